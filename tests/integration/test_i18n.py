"""Translations: po/de.po is valid and complete, and the CLI and the daemon
speak German under LANGUAGE=de, while machine-readable output stays as it is.

Usage: test_i18n.py FOLDERSYNC LOCALEDIR

LOCALEDIR is the build tree's po/ directory, where meson compiles the
catalogs as LANG/LC_MESSAGES/foldersync.mo; the programs read it from
FOLDERSYNC_LOCALEDIR (instead of the installed LOCALEDIR). The locale is
C.UTF-8, which glibc always has: LANGUAGE picks the language of messages in
any locale except plain "C" (there glibc ignores LANGUAGE by design)."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from fstest import FOLDERSYNC, Skip, Workspace, check, run_tests  # noqa: E402
from daemon import DaemonDevice  # noqa: E402

SRC = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
PO_DIR = os.path.join(SRC, "po")
LOCALEDIR = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(FOLDERSYNC), "..", "po")
# xgettext as meson's i18n.gettext(preset: 'glib') runs it
XGETTEXT_ARGS = ["--from-code=UTF-8", "--add-comments", "--keyword=_", "--keyword=N_",
                 "--keyword=C_:1c,2", "--keyword=NC_:1c,2", "--keyword=g_dcgettext:2",
                 "--keyword=g_dngettext:2,3", "--keyword=g_dpgettext2:2c,3"]


def german(**extra):
    env = dict(os.environ, LC_ALL="C.UTF-8", LANGUAGE="de", FOLDERSYNC_LOCALEDIR=LOCALEDIR)
    env.update(extra)
    return env


def run(args, env, **kw):
    return subprocess.run([FOLDERSYNC] + args, env=env, capture_output=True, **kw)


def statistics(po):
    proc = subprocess.run(["msgfmt", "--check", "--statistics", "-o", "/dev/null", po],
                          capture_output=True, env=dict(os.environ, LC_ALL="C.UTF-8", LANGUAGE=""))
    return proc.returncode, proc.stderr.decode()


def potfiles():
    lines = open(os.path.join(PO_DIR, "POTFILES.in")).read().splitlines()
    return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


def test_catalog_is_valid():
    if shutil.which("msgfmt") is None:
        raise Skip("gettext is not installed")
    check(os.path.isfile(os.path.join(LOCALEDIR, "de", "LC_MESSAGES", "foldersync.mo")),
          "the build did not compile de.po into %s" % LOCALEDIR)
    rc, stats = statistics(os.path.join(PO_DIR, "de.po"))
    check(rc == 0, "msgfmt --check de.po:\n%s" % stats)
    check(re.fullmatch(r"\d+ translated messages?\.\n", stats) is not None,
          "de.po has fuzzy or untranslated messages: %s" % stats.strip())
    check("de" in open(os.path.join(PO_DIR, "LINGUAS")).read().split(), "de is not in LINGUAS")


def test_catalog_covers_every_marked_string():
    """de.po translates every string the sources mark today (not only those
    of the last foldersync-update-po) and nothing that is gone."""
    if shutil.which("xgettext") is None:
        raise Skip("gettext is not installed")
    work = tempfile.mkdtemp(prefix="fs-i18n-")
    try:
        pot, merged = os.path.join(work, "fresh.pot"), os.path.join(work, "de.po")
        subprocess.run(["xgettext", "--directory", SRC, "--output", pot] + XGETTEXT_ARGS + potfiles(),
                       check=True, capture_output=True)
        # "%" G_GUINT64_FORMAT " files": xgettext stops at the macro, so the
        # catalog would never match the string the program looks up.
        cut = re.findall(r'^(#: .*)\n(?:#.*\n)*msgid ((?:".*"\n)+)', open(pot).read(), re.M)
        cut = ["%s %s" % (where, text.replace("\n", "")) for where, text in cut
               if re.search(r'%"\s*$', text.strip())]
        check(not cut, "strings cut by a format macro (use %%llu/%%lld with a cast):\n%s" % "\n".join(cut))
        subprocess.run(["msgmerge", "--quiet", "--no-fuzzy-matching", "--output-file", merged,
                        os.path.join(PO_DIR, "de.po"), pot], check=True, capture_output=True)
        rc, stats = statistics(merged)
        check(rc == 0 and re.fullmatch(r"\d+ translated messages?\.\n", stats) is not None,
              "de.po lags behind the sources (run `meson compile foldersync-update-po` and "
              "translate): %s\n%s" % (stats.strip(), untranslated(merged)))
        check("\n#~ " not in open(merged).read(), "de.po has entries no source uses any more:\n%s"
              % "\n".join(l for l in open(merged).read().splitlines() if l.startswith("#~ msgid")))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def untranslated(po):
    out = subprocess.run(["msgattrib", "--untranslated", "--no-obsolete", po], capture_output=True)
    return "\n".join(l for l in out.stdout.decode().splitlines() if l.startswith("msgid") or l.startswith('"'))[:3000]


def test_potfiles_lists_every_file_with_marked_strings():
    listed = set(potfiles())
    marked = re.compile(r"\b(?:_|N_|C_|NC_|g_dngettext|ngettext)\s*\(")
    missing = []
    for top in ["core", "applet", "plugins"]:
        for dirpath, _, files in os.walk(os.path.join(SRC, top)):
            for f in files:
                if f.endswith(".c"):
                    rel = os.path.relpath(os.path.join(dirpath, f), SRC)
                    if marked.search(open(os.path.join(SRC, rel), errors="replace").read()) and rel not in listed:
                        missing.append(rel)
    check(not missing, "files with translatable strings missing from po/POTFILES.in: %s" % missing)
    gone = [p for p in listed if not os.path.exists(os.path.join(SRC, p))]
    check(not gone, "po/POTFILES.in lists files that do not exist: %s" % gone)


def test_help_in_german():
    out = run(["--help"], german()).stdout.decode()
    check("Befehle:" in out and "Einen neuen zufälligen Schlüssel ausgeben" in out,
          "foldersync --help is not German:\n%s" % out)
    out = run(["sync", "--help"], german()).stdout.decode()
    check("Der zu synchronisierende Ordner (erforderlich)" in out,
          "option descriptions of sync --help are not German:\n%s" % out)
    check("— einen Ordner und seinen Speicher in beide Richtungen abgleichen" in out, out)
    # Option names and placeholders are not translated.
    check("--path=DIR" in out and "--key-file=FILE" in out, out)
    # GOption's own words come from GLib's catalog (libglib2.0-data)
    if os.path.exists("/usr/share/locale/de/LC_MESSAGES/glib20.mo"):
        check("Aufruf:" in out, "GLib's part of --help is not German:\n%s" % out)


def test_errors_in_german():
    ws = Workspace("i18n")
    try:
        proc = run(["sync", "--path", ws.dir, "--key-file", ws.path("missing.key")], german())
        err = proc.stderr.decode()
        check(proc.returncode == 3, "exit %d: %s" % (proc.returncode, err))
        check(err.startswith("foldersync: Die Schlüsseldatei „%s“ kann nicht gelesen werden"
                             % ws.path("missing.key")), "key file error not German: %r" % err)
        proc = run(["sync", "--key-file", ws.path("missing.key")], german())
        err = proc.stderr.decode()
        check(proc.returncode == 2 and err.startswith("foldersync: --path ist erforderlich\n"), err)
        check("Rufen Sie „foldersync sync --help“ auf" in err, err)
        key = ws.keyfile()
        proc = run(["sync", "--path", ws.path("nowhere"), "--key-file", key, "--store", ws.store()],
                   german(XDG_DATA_HOME=ws.path("data")))
        err = proc.stderr.decode()
        check(proc.returncode == 6 and "Der Ordner „%s“ existiert nicht" % ws.path("nowhere") in err, err)
        proc = run(["frobnicate"], german())
        check(proc.returncode == 2 and proc.stderr.decode().startswith("foldersync: unbekannter Befehl „frobnicate“"),
              proc.stderr.decode())
    finally:
        ws.cleanup()


def test_summary_in_german():
    ws = Workspace("i18n-sync")
    try:
        key, store, folder = ws.keyfile(), ws.store(), ws.path("folder")
        os.makedirs(folder)
        with open(os.path.join(folder, "a.txt"), "w") as fh:
            fh.write("hallo\n")
        proc = run(["sync", "--path", folder, "--key-file", key, "--store", store],
                   german(XDG_DATA_HOME=ws.path("data")))
        out = proc.stdout.decode()
        check(proc.returncode == 0 and out.startswith("%s synchronisiert: 1 hochgeladen" % folder),
              "summary: %r %r" % (out, proc.stderr.decode()))
    finally:
        ws.cleanup()


def test_machine_readable_output_is_not_translated():
    ws = Workspace("i18n-json")
    try:
        key, store, folder = ws.keyfile(), ws.store(), ws.path("folder")
        os.makedirs(folder)
        proc = run(["sync", "--json", "--path", folder, "--key-file", key, "--store", store],
                   german(XDG_DATA_HOME=ws.path("data")))
        check(proc.returncode == 0, proc.stderr.decode())
        summary = json.loads(proc.stdout)
        check("files_up" in summary and "messages" in summary, summary)
        # --json: even its error is English, for programs
        proc = run(["sync", "--json", "--path", ws.path("nowhere"), "--key-file", key, "--store", store],
                   german(XDG_DATA_HOME=ws.path("data")))
        check(proc.returncode == 6 and "Folder ‘%s’ does not exist" % ws.path("nowhere")
              in proc.stderr.decode(), proc.stderr.decode())
        out = run(["keygen"], german()).stdout.decode().strip()
        check(re.fullmatch(r"[0-9a-f]{64}", out) is not None, out)
        out = run(["--version"], german()).stdout.decode()
        check(out.startswith("foldersync "), out)
    finally:
        ws.cleanup()


def test_plain_c_locale_stays_english():
    # glibc ignores LANGUAGE when the locale is "C": documented behaviour.
    out = run(["--help"], german(LC_ALL="C")).stdout.decode()
    check("Commands:" in out, out)
    out = run(["--help"], german(LANGUAGE="")).stdout.decode()
    check("Commands:" in out, out)


def test_german_locale():
    locales = subprocess.run(["locale", "-a"], capture_output=True).stdout.decode().split()
    if not any(l.lower() in ("de_de.utf8", "de_de.utf-8") for l in locales):
        raise Skip("no de_DE.UTF-8 locale here (LANGUAGE=de with C.UTF-8 is tested instead)")
    env = german(LANG="de_DE.UTF-8")
    del env["LC_ALL"], env["LANGUAGE"]
    out = run(["--help"], env).stdout.decode()
    check("Befehle:" in out, out)


def test_daemon_errors_in_german():
    """The daemon translates the errors it returns over D-Bus (in the
    language of the session that started it); the CLI prints them."""
    if shutil.which("dbus-daemon") is None:
        raise Skip("dbus-daemon is not installed")
    ws = Workspace("i18n-daemon")
    dev = DaemonDevice(ws, "a", ws.store(), ws.keyfile(),
                       extra_env={"LC_ALL": "C.UTF-8", "LANGUAGE": "de", "FOLDERSYNC_LOCALEDIR": LOCALEDIR})
    try:
        dev.start()
        nowhere = ws.path("nowhere")
        proc = dev.cli("start", "--path", nowhere, "--store", dev.store, "--key-file", dev.key, check=False)
        err = proc.stderr.decode()
        check(proc.returncode == 6 and err.startswith("foldersync: Der Ordner „%s“ existiert nicht" % nowhere),
              "exit %d: %r" % (proc.returncode, err))
    finally:
        dev.stop()
        ws.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([test_catalog_is_valid, test_catalog_covers_every_marked_string,
                        test_potfiles_lists_every_file_with_marked_strings, test_help_in_german,
                        test_errors_in_german, test_summary_in_german,
                        test_machine_readable_output_is_not_translated, test_plain_c_locale_stays_english,
                        test_german_locale, test_daemon_errors_in_german]))
