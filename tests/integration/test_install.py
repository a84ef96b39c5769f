"""`meson install --destdir` lays out every file where a distribution package
puts it, and the installed programs run from that tree.

Usage: test_install.py MESON BUILD_DIR   (tests/meson.build passes both)

The tree is checked against the build's own directory options (prefix,
bindir, libdir, ...), so a build configured with -Dprefix=/usr is checked
against /usr. The applet's files are checked only when the build has the
applet (meson introspect lists foldersync-applet among installed files)."""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from fstest import Skip, check, run_tests  # noqa: E402

MESON = sys.argv[1] if len(sys.argv) > 1 else "meson"
BUILD = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("MESON_BUILD_ROOT", "build")
STATE = {}


def introspect(what):
    out = subprocess.run([MESON, "introspect", BUILD, what], check=True, capture_output=True).stdout
    return json.loads(out)


def options():
    if "options" not in STATE:
        STATE["options"] = {o["name"]: o["value"] for o in introspect("--buildoptions")}
    return STATE["options"]


def installdir(name):
    """The absolute install path of directory option @name."""
    value = options()[name]
    return value if os.path.isabs(value) else os.path.join(options()["prefix"], value)


def dest(*parts):
    """A path inside the DESTDIR: dest("/usr/local/bin", "foldersync")."""
    return os.path.join(STATE["destdir"], os.path.join(*parts).lstrip("/"))


def installed_env():
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = dest(installdir("libdir"))
    env["FOLDERSYNC_PLUGIN_DIR"] = dest(installdir("libdir"), "foldersync", "plugins")
    env.pop("FOLDERSYNC_LOCALEDIR", None)
    env["LC_ALL"] = "C.UTF-8"
    env.pop("LANGUAGE", None)
    return env


def test_meson_install():
    STATE["destdir"] = tempfile.mkdtemp(prefix="fs-install-")
    proc = subprocess.run([MESON, "install", "-C", BUILD, "--no-rebuild", "--destdir", STATE["destdir"]],
                          capture_output=True)
    check(proc.returncode == 0, "meson install failed:\n%s%s"
          % (proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")))
    # Every file meson says it installs is in the tree.
    missing = [p for p in introspect("--installed").values() if not os.path.lexists(dest(p))]
    check(not missing, "listed by meson introspect --installed but not in DESTDIR: %s" % missing)


def test_layout():
    expected = [
        (installdir("bindir"), "foldersync"),
        (installdir("libexecdir"), "foldersyncd"),
        (installdir("datadir"), "dbus-1", "services", "org.toolbox.FolderSync.service"),
        (installdir("datadir"), "dbus-1", "interfaces", "org.toolbox.FolderSync.xml"),
        # systemd's own pkg-config file says ${prefix}/lib/systemd/user
        (options()["prefix"], "lib", "systemd", "user", "foldersyncd.service"),
        (installdir("datadir"), "bash-completion", "completions", "foldersync"),
        (installdir("localedir"), "de", "LC_MESSAGES", "foldersync.mo"),
    ]
    for parts in expected:
        check(os.path.isfile(dest(*parts)), "missing: %s" % os.path.join(*parts))
    for exe in [dest(installdir("bindir"), "foldersync"), dest(installdir("libexecdir"), "foldersyncd")]:
        check(os.access(exe, os.X_OK), "%s is not executable" % exe)
    # libdir is lib/<multiarch triplet> on Debian, lib or lib64 elsewhere.
    libdir = options()["libdir"]
    check(libdir in ("lib", "lib64") or (libdir.startswith("lib/") and libdir.count("-") >= 2),
          "unexpected libdir %s" % libdir)
    plugins = sorted(os.path.basename(p) for p in
                     glob.glob(dest(installdir("libdir"), "foldersync", "plugins", "*.so")))
    for name in ["crypto-aes.so", "pairing-token.so", "storage-local.so", "storage-s3.so"]:
        check(name in plugins, "plugin %s not installed (have %s)" % (name, plugins))
    check(os.path.isfile(dest(installdir("libdir"), "libfoldersync.so.0")), "libfoldersync.so.0 missing")


def test_service_files_name_the_installed_daemon():
    daemon = os.path.join(installdir("libexecdir"), "foldersyncd")
    service = open(dest(installdir("datadir"), "dbus-1", "services",
                        "org.toolbox.FolderSync.service")).read()
    check("Exec=%s\n" % daemon in service, "D-Bus service file: no Exec=%s in\n%s" % (daemon, service))
    check("Name=org.toolbox.FolderSync\n" in service, service)
    check("SystemdService=foldersyncd.service" in service, service)
    unit = open(dest(options()["prefix"], "lib", "systemd", "user", "foldersyncd.service")).read()
    check("ExecStart=%s\n" % daemon in unit, "systemd unit: no ExecStart=%s in\n%s" % (daemon, unit))
    check("BusName=org.toolbox.FolderSync" in unit, unit)


def test_man_pages():
    man1 = dest(installdir("mandir"), "man1", "foldersync.1")
    man8 = dest(installdir("mandir"), "man8", "foldersyncd.8")
    if not os.path.exists(man1) and options().get("man") != "enabled":
        raise Skip("man pages not built (scdoc missing and -Dman=auto)")
    for page, name, section in [(man1, "foldersync", "1"), (man8, "foldersyncd", "8")]:
        check(os.path.isfile(page), "missing: %s" % page)
        text = open(page).read()
        check('.TH "%s" "%s"' % (name, section) in text, "%s has no .TH header" % page)
    if shutil.which("man"):
        proc = subprocess.run(["man", "-l", man1], capture_output=True,
                              env=dict(os.environ, MANWIDTH="80", MAN_KEEP_STDERR="1", PAGER="cat"))
        check(proc.returncode == 0 and b"EXIT STATUS" in proc.stdout,
              "man -l foldersync.1: %s" % proc.stderr.decode(errors="replace"))


def test_applet_files():
    installed = list(introspect("--installed").values())
    if not any(os.path.basename(p) == "foldersync-applet" for p in installed):
        raise Skip("the applet is not built here")
    check(os.path.isfile(dest(installdir("bindir"), "foldersync-applet")), "applet binary missing")
    autostart = glob.glob(dest(installdir("sysconfdir"), "xdg", "autostart", "*.desktop"))
    check(autostart, "no autostart .desktop in %s/xdg/autostart" % installdir("sysconfdir"))
    for desktop in autostart:
        text = open(desktop).read()
        check("[Desktop Entry]" in text and "Exec=" in text, "%s is no desktop entry" % desktop)
    icons = glob.glob(dest(installdir("datadir"), "icons", "hicolor", "*", "*", "*"))
    check(icons, "no icons under %s/icons/hicolor" % installdir("datadir"))


def test_no_build_tree_rpath():
    if shutil.which("readelf") is None:
        raise Skip("readelf not available")
    build = os.path.realpath(BUILD)
    for exe in [dest(installdir("bindir"), "foldersync"), dest(installdir("libexecdir"), "foldersyncd")]:
        out = subprocess.run(["readelf", "-d", exe], check=True, capture_output=True).stdout.decode()
        check(build not in out, "%s still has an RPATH into the build tree:\n%s" % (exe, out))


def test_installed_programs_run():
    cli = dest(installdir("bindir"), "foldersync")
    daemon = dest(installdir("libexecdir"), "foldersyncd")
    env = installed_env()
    out = subprocess.run([cli, "--help"], env=env, check=True, capture_output=True).stdout.decode()
    check("Usage: foldersync" in out and "keygen" in out, out)
    out = subprocess.run([cli, "--version"], env=env, check=True, capture_output=True).stdout.decode()
    check(out.startswith("foldersync "), out)
    out = subprocess.run([daemon, "--version"], env=env, check=True, capture_output=True).stdout.decode()
    check(out.startswith("foldersyncd "), out)
    key = subprocess.run([cli, "keygen"], env=env, check=True, capture_output=True).stdout.strip()
    check(len(key) == 64 and all(c in b"0123456789abcdef" for c in key), "keygen printed %r" % key)

    # A real sync loads the installed storage-local and crypto-aes plugins.
    work = tempfile.mkdtemp(prefix="fs-install-run-")
    try:
        folder, store, home = (os.path.join(work, d) for d in ("folder", "store", "home"))
        for d in (folder, store, home):
            os.makedirs(d)
        with open(os.path.join(folder, "hello.txt"), "w") as fh:
            fh.write("hello\n")
        keyfile = os.path.join(work, "key")
        fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, key + b"\n")
        os.close(fd)
        env.update(XDG_DATA_HOME=os.path.join(home, "data"), XDG_CONFIG_HOME=os.path.join(home, "config"),
                   HOME=home)
        proc = subprocess.run([cli, "sync", "--json", "--path", folder, "--key-file", keyfile,
                               "--store", store], env=env, capture_output=True)
        check(proc.returncode == 0, "installed sync failed: %s" % proc.stderr.decode(errors="replace"))
        check(json.loads(proc.stdout)["files_up"] == 1, proc.stdout.decode())
        # Without the plugin directory it fails, so the plugins above were the installed ones.
        env["FOLDERSYNC_PLUGIN_DIR"] = os.path.join(work, "nothing-here")
        proc = subprocess.run([cli, "sync", "--path", folder, "--key-file", keyfile, "--store", store],
                              env=env, capture_output=True)
        check(proc.returncode != 0 and b"not found" in proc.stderr, proc.stderr.decode(errors="replace"))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_installed_translation():
    cli = dest(installdir("bindir"), "foldersync")
    env = installed_env()
    # The installed binary looks in LOCALEDIR, outside the DESTDIR: point it at the installed catalog.
    env["FOLDERSYNC_LOCALEDIR"] = dest(installdir("localedir"))
    env["LANGUAGE"] = "de"
    out = subprocess.run([cli, "--help"], env=env, check=True, capture_output=True).stdout.decode()
    check("Befehle:" in out, "no German in the installed CLI's --help:\n%s" % out)


def test_cleanup():
    shutil.rmtree(STATE.pop("destdir", ""), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_tests([test_meson_install, test_layout, test_service_files_name_the_installed_daemon,
                        test_man_pages, test_applet_files, test_no_build_tree_rpath,
                        test_installed_programs_run, test_installed_translation, test_cleanup]))
