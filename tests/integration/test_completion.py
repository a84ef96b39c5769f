"""bash completion (data/completion/foldersync) and the man pages
(docs/*.scd) know every verb and option the CLI really has.

Usage: test_completion.py FOLDERSYNC [FOLDERSYNCD]

The completion is sourced in a real bash (with bash-completion's helpers
when installed, else without) and its function is called the way readline
calls it; COMPREPLY is compared. The lists of verbs and options are taken
from `foldersync --help` and `foldersync VERB --help`."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from fstest import FOLDERSYNC, Skip, check, run_tests  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPLETION = os.path.join(SRC, "data", "completion", "foldersync")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
FOLDERSYNCD = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("FOLDERSYNC_DAEMON", "foldersyncd")
ENGLISH = dict(os.environ, LC_ALL="C.UTF-8")
ENGLISH.pop("LANGUAGE", None)


def help_text(*args, program=None):
    proc = subprocess.run([program or FOLDERSYNC] + list(args) + ["--help"], env=ENGLISH,
                          capture_output=True)
    check(proc.returncode == 0, "%s --help failed: %s" % (args, proc.stderr.decode(errors="replace")))
    return proc.stdout.decode()


def verbs():
    text = help_text()
    block = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def long_options(*args, program=None):
    """The long options GOption lists in VERB --help (--help included)."""
    return set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", help_text(*args, program=program), re.M))


def complete(line, with_helpers=True, cwd=None):
    """COMPREPLY for the command line @line, the cursor at its end."""
    words_src = line.split(" ")
    script = []
    if with_helpers:
        script.append("source %s" % BASH_COMPLETION)
    script += [
        "source %s" % COMPLETION,
        "fn=$(complete -p foldersync | sed -E 's/.*-F ([^ ]+) .*/\\1/')",
        "COMP_LINE=%s" % shell_quote(line),
        "COMP_POINT=${#COMP_LINE}",
        "COMP_WORDS=(%s)" % " ".join(shell_quote(w) for w in words_src),
        "COMP_CWORD=%d" % (len(words_src) - 1),
        "COMP_TYPE=9 COMP_KEY=9",
        "$fn foldersync %s %s" % (shell_quote(words_src[-1]),
                                  shell_quote(words_src[-2] if len(words_src) > 1 else "")),
        "printf '%s\\n' \"${COMPREPLY[@]}\"",
    ]
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", "\n".join(script)], cwd=cwd,
                          capture_output=True, env=ENGLISH)
    check(proc.returncode == 0, "bash failed: %s" % proc.stderr.decode(errors="replace"))
    return sorted(w for w in proc.stdout.decode().splitlines() if w)


def shell_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def helpers_available():
    return os.path.exists(BASH_COMPLETION)


def both_modes(fn):
    """Runs a check with bash-completion's helpers, and without them."""
    modes = [True, False] if helpers_available() else [False]
    for with_helpers in modes:
        fn(with_helpers)


def test_syntax():
    subprocess.run(["bash", "-n", COMPLETION], check=True)


def test_verbs():
    def run(h):
        check(complete("foldersync ", h) == sorted(verbs()),
              "verbs: %s, expected %s" % (complete("foldersync ", h), sorted(verbs())))
        check(complete("foldersync st", h) == ["start", "status", "stop"], complete("foldersync st", h))
        check(complete("foldersync --verbose gen", h) == ["generate-token"],
              complete("foldersync --verbose gen", h))
        check(complete("foldersync --ver", h) == ["--verbose", "--version"], complete("foldersync --ver", h))
    both_modes(run)


def test_options_of_a_verb():
    def run(h):
        got = complete("foldersync force-sync --", h)
        check(got == ["--help", "--path", "--timeout", "--wait"], "force-sync: %s" % got)
        got = complete("foldersync sync --ke", h)
        check(got == ["--key-file"], "sync --ke: %s" % got)
        got = complete("foldersync status --j", h)
        check(got == ["--json"], "status --j: %s" % got)
        got = complete("foldersync generate-token --qr a", h)
        check(got == ["always", "auto"], "--qr a: %s" % got)
        # An option's value is not completed as an option.
        check(complete("foldersync start --max-workers ", h) == [], "value of --max-workers")
    both_modes(run)


def test_every_verb_offers_exactly_its_options():
    problems = []
    if not helpers_available():
        print("# bash-completion not installed: checking without its helpers")
    for verb in verbs():
        want = sorted(long_options(verb))
        got = complete("foldersync %s --" % verb, helpers_available())
        if got != want:
            problems.append("%s: completion offers %s, --help lists %s (missing %s, extra %s)"
                            % (verb, got, want, sorted(set(want) - set(got)), sorted(set(got) - set(want))))
    check(not problems, "\n".join(problems))


def test_path_completes_directories():
    work = tempfile.mkdtemp(prefix="fs-completion-")
    try:
        os.makedirs(os.path.join(work, "Notes", "inner"))
        os.makedirs(os.path.join(work, "Nothing"))
        open(os.path.join(work, "Nofile.txt"), "w").close()
        open(os.path.join(work, "notes.key"), "w").close()

        def run(h):
            got = complete("foldersync start --path No", h, cwd=work)
            check(got == ["Notes", "Nothing"], "--path No: %s" % got)
            got = complete("foldersync stop -p No", h, cwd=work)
            check(got == ["Notes", "Nothing"], "-p No: %s" % got)
            got = complete("foldersync sync --store Notes/", h, cwd=work)
            check(got == ["Notes/inner"], "--store Notes/: %s" % got)
            got = complete("foldersync sync --key-file no", h, cwd=work)
            check(got == ["notes.key"], "--key-file no: %s" % got)
        both_modes(run)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---- man pages ------------------------------------------------------------

def man_source(name):
    return open(os.path.join(SRC, "docs", name)).read()


def man_sections(text):
    """{heading: body} of the top-level '# HEADING' sections of an scdoc page."""
    parts = re.split(r"^# (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def test_man_page_documents_every_verb_and_option():
    sections = man_sections(man_source("foldersync.1.scd"))
    commands = sections["COMMANDS"]
    # A command starts at a line '*verb*' in column 0.
    chunks = re.split(r"^\*([a-z-]+)\*$", commands, flags=re.M)
    documented = {chunks[i]: chunks[i + 1] for i in range(1, len(chunks), 2)}
    problems = []
    if sorted(documented) != sorted(verbs()):
        problems.append("COMMANDS has %s, the CLI has %s" % (sorted(documented), sorted(verbs())))
    for verb in verbs():
        body = documented.get(verb, "")
        if "store options below" in body:
            body += sections["STORE OPTIONS"]
        for opt in sorted(long_options(verb) - {"--help"}):
            if "*%s*" % opt not in body:
                problems.append("foldersync(1): %s %s is not documented" % (verb, opt))
        if "foldersync %s*" % verb not in sections["SYNOPSIS"]:
            problems.append("foldersync(1): %s is not in the SYNOPSIS" % verb)
    for code in range(0, 16):
        if "*%d*" % code not in sections["EXIT STATUS"]:
            problems.append("foldersync(1): exit code %d is not documented" % code)
    daemon = man_sections(man_source("foldersyncd.8.scd"))
    for opt in sorted(long_options(program=FOLDERSYNCD)):
        if "*%s*" % opt not in daemon["OPTIONS"]:
            problems.append("foldersyncd(8): %s is not documented" % opt)
    check(not problems, "\n".join(problems))


def test_man_pages_render():
    if shutil.which("scdoc") is None:
        raise Skip("scdoc not installed")
    for name in ["foldersync.1.scd", "foldersyncd.8.scd"]:
        proc = subprocess.run(["scdoc"], input=man_source(name).encode(), capture_output=True)
        check(proc.returncode == 0, "scdoc %s: %s" % (name, proc.stderr.decode(errors="replace")))


if __name__ == "__main__":
    sys.exit(run_tests([test_syntax, test_verbs, test_options_of_a_verb,
                        test_every_verb_offers_exactly_its_options, test_path_completes_directories,
                        test_man_page_documents_every_verb_and_option, test_man_pages_render]))
