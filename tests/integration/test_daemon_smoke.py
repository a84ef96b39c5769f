"""foldersyncd on a private session bus, driven with gdbus: AddFolder makes
a folder sync live (local change → store, store → folder), bad input gets an
org.toolbox.FolderSync.Error.* reply and the daemon survives, folders are
restored after a restart, SIGTERM exits 0.

argv[1] is the foldersync CLI; the daemon is $FOLDERSYNC_DAEMON, else
foldersyncd next to the CLI."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from fstest import FOLDERSYNC, Workspace, check, run_tests, snapshot  # noqa: E402

DAEMON = os.environ.get("FOLDERSYNC_DAEMON") or os.path.join(os.path.dirname(os.path.abspath(FOLDERSYNC)), "foldersyncd")
NAME = "org.toolbox.FolderSync"
ROOT = "/org/toolbox/FolderSync"
MANAGER = NAME + ".Manager"
FOLDER = NAME + ".Folder"
ERROR = "org.toolbox.FolderSync.Error."

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=%s</listen>
  <!-- no <servicedir>: nothing is activated, the test starts foldersyncd itself -->
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class Ctx:
    ws = None
    bus = None
    address = None
    daemon = None
    log = None
    folder_path = None   # object path of the folder added by test_add_folder
    root = None
    store = None
    key = None


ctx = Ctx()


def env():
    e = dict(os.environ)
    home = ctx.ws.path("home")
    e.update({
        "DBUS_SESSION_BUS_ADDRESS": ctx.address,
        "XDG_CONFIG_HOME": os.path.join(home, "config"),
        "XDG_DATA_HOME": os.path.join(home, "data"),
        "XDG_CACHE_HOME": os.path.join(home, "cache"),
        "XDG_RUNTIME_DIR": ctx.ws.path("run"),
        "HOME": home,
        "FOLDERSYNC_DEVICE_NAME": "daemon",
        "G_MESSAGES_DEBUG": "FolderSync",
    })
    return e


def gdbus(obj, method, *args):
    """(ok, output) of one method call; output is stdout or stderr."""
    proc = subprocess.run(["gdbus", "call", "--session", "--dest", NAME, "--object-path", obj,
                           "--method", method] + list(args),
                          env=env(), capture_output=True, timeout=60)
    if proc.returncode == 0:
        return True, proc.stdout.decode()
    return False, proc.stderr.decode()


def get_prop(obj, iface, prop):
    ok, out = gdbus(obj, "org.freedesktop.DBus.Properties.Get", iface, prop)
    check(ok, "Get %s.%s failed: %s" % (iface, prop, out))
    return out


def expect_error(name, obj, method, *args):
    ok, out = gdbus(obj, method, *args)
    check(not ok, "%s succeeded, expected %s%s: %s" % (method, ERROR, name, out))
    check(("GDBus.Error:" + ERROR + name + ":") in out,
          "%s: expected %s%s, got: %s" % (method, ERROR, name, out.strip()))
    check("\n" not in out.strip(), "error message is not one line: %r" % out)
    return out


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


def start_bus():
    os.makedirs(ctx.ws.path("bus"), exist_ok=True)
    conf = ctx.ws.path("bus.conf")
    with open(conf, "w") as fh:
        fh.write(BUS_CONFIG % ctx.ws.path("bus"))
    ctx.bus = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--print-address=1", "--nofork"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    ctx.address = ctx.bus.stdout.readline().decode().strip()
    check(ctx.address.startswith("unix:"), "no bus address: %r" % ctx.address)


def alive():
    ok, _ = gdbus(ROOT, "org.freedesktop.DBus.Properties.Get", MANAGER, "Version")
    return ok


def start_daemon():
    ctx.log = open(ctx.ws.path("foldersyncd.log"), "ab")
    ctx.daemon = subprocess.Popen([DAEMON], env=env(), stdout=ctx.log, stderr=subprocess.STDOUT)
    wait_for(alive, 10, "foldersyncd to own " + NAME)


def stop_daemon():
    ctx.daemon.send_signal(signal.SIGTERM)
    rc = ctx.daemon.wait(timeout=30)
    ctx.log.close()
    ctx.daemon = None
    return rc


def log_tail():
    with open(ctx.ws.path("foldersyncd.log"), "rb") as fh:
        return fh.read().decode(errors="replace")[-3000:]


def device_b():
    """A second device: the foldersync CLI with its own XDG dirs and folder."""
    dev = ctx.ws.device("b", ctx.store, ctx.key)
    return dev


def folder_prop(prop):
    return get_prop(ctx.folder_path, FOLDER, prop)


# ---- tests -----------------------------------------------------------------


def test_add_folder_uploads_live():
    ctx.root = ctx.ws.path("a", "folder")
    os.makedirs(ctx.root)
    ctx.store = ctx.ws.store()
    ctx.key = ctx.ws.keyfile()
    ok, out = gdbus(ROOT, MANAGER + ".AddFolder",
                    "{'local-path': <'%s'>, 'store': <'%s'>, 'key-file': <'%s'>, "
                    "'batch-interval': <uint32 200>, 'poll-interval': <uint32 1>}"
                    % (ctx.root, ctx.store, ctx.key))
    check(ok, "AddFolder failed: %s\n%s" % (out, log_tail()))
    m = re.search(r"objectpath '(/org/toolbox/FolderSync/folder/[0-9a-f]{16})'", out)
    check(m, "no object path in %r" % out)
    ctx.folder_path = m.group(1)
    check(ctx.folder_path in get_prop(ROOT, MANAGER, "Folders"), "Folders lacks the new folder")

    # Wait for the first sync, so the write below is a change it has to see.
    wait_for(lambda: "uint64 0" not in folder_prop("SyncCount"), 10, "the first sync")
    objects = ctx.ws.path("store", "o")
    before = sum(len(f) for _, _, f in os.walk(objects))
    with open(os.path.join(ctx.root, "hello.txt"), "wb") as fh:
        fh.write(b"hello from the daemon\n")
    t0 = time.monotonic()
    wait_for(lambda: sum(len(f) for _, _, f in os.walk(objects)) > before, 5,
             "the new file's object in the store")
    print("# local change reached the store in %.2f s" % (time.monotonic() - t0))
    wait_for(lambda: "'idle'" in folder_prop("State"), 5, "State idle")

    b = device_b()
    b.sync()
    check(snapshot(b.root).get(b"hello.txt", (None, None))[1] == b"hello from the daemon\n",
          "device b did not get hello.txt: %r" % snapshot(b.root))


def test_remote_change_arrives():
    b = device_b()
    with open(os.path.join(b.root, "from-b.txt"), "wb") as fh:
        fh.write(b"written on b\n")
    b.sync()
    t0 = time.monotonic()
    target = os.path.join(ctx.root, "from-b.txt")
    wait_for(lambda: os.path.exists(target) and open(target, "rb").read() == b"written on b\n",
             1 + 0.2 + 4, "from-b.txt in the daemon's folder")
    print("# remote change arrived in %.2f s" % (time.monotonic() - t0))


def test_bad_input_errors():
    nested = os.path.join(ctx.root, "sub")
    os.makedirs(nested, exist_ok=True)
    other = ctx.ws.path("other")
    os.makedirs(other, exist_ok=True)
    add = MANAGER + ".AddFolder"
    expect_error("InvalidArgument", ROOT, add, "{'local-path': <'relative/dir'>}")
    expect_error("Folder", ROOT, add, "{'local-path': <'%s'>}" % ctx.ws.path("missing"))
    expect_error("AlreadyExists", ROOT, add, "{'local-path': <'%s'>}" % ctx.root)
    expect_error("AlreadyExists", ROOT, add, "{'local-path': <'%s'>}" % nested)
    expect_error("AlreadyExists", ROOT, add, "{'local-path': <'%s'>}" % ctx.ws.path("a"))
    expect_error("InvalidArgument", ROOT, add, "{'local-path': <uint32 7>}")
    expect_error("InvalidArgument", ROOT, add,
                 "{'local-path': <'%s'>, 'batch-interval': <'fast'>}" % other)
    expect_error("InvalidArgument", ROOT, add, "{'local-path': <'%s'>, 'colour': <'blue'>}" % other)
    expect_error("InvalidArgument", ROOT, add, "@a{sv} {}")
    expect_error("NoBucket", ROOT, add,
                 "{'local-path': <'%s'>, 'store': <'%s'>}" % (other, ctx.ws.path("no-store")))
    bad_key = ctx.ws.path("bad.key")
    with open(bad_key, "w") as fh:
        fh.write("zz\n")
    os.chmod(bad_key, 0o600)
    expect_error("KeyFile", ROOT, add,
                 "{'local-path': <'%s'>, 'store': <'%s'>, 'key-file': <'%s'>}" % (other, ctx.store, bad_key))
    wrong_key = ctx.ws.keyfile("wrong")
    # Two folders of one daemon on one store location would mirror each other.
    expect_error("AlreadyExists", ROOT, add,
                 "{'local-path': <'%s'>, 'store': <'%s'>, 'key-file': <'%s'>}"
                 % (other, ctx.store, wrong_key))
    # A store another key created: refused before any file is touched.
    store2 = ctx.ws.store("store2")
    seed = ctx.ws.path("seed")
    os.makedirs(seed)
    subprocess.run([sys.argv[1], "sync", "--path", seed, "--key-file", ctx.ws.keyfile("other"),
                    "--store", store2], env=env(), check=True, capture_output=True)
    out = expect_error("WrongKey", ROOT, add,
                       "{'local-path': <'%s'>, 'store': <'%s'>, 'key-file': <'%s'>}"
                       % (other, store2, wrong_key))
    check(open(wrong_key).read().strip() not in out, "the key is in the error message")
    expect_error("NotFound", ROOT, MANAGER + ".RemoveFolder", ROOT + "/folder/0123456789abcdef")
    expect_error("PairingInvalid", ROOT, MANAGER + ".Pair", "token", other, "@a{sv} {}")
    expect_error("InvalidArgument", ctx.folder_path, FOLDER + ".GenerateToken", "100000")
    # Nothing of the failed calls was kept.
    folders = get_prop(ROOT, MANAGER, "Folders")
    check(folders.count("/folder/") == 1, "Folders changed: %s" % folders)
    config_dir = os.path.join(env()["XDG_CONFIG_HOME"], "foldersync", "folders")
    check(len(os.listdir(config_dir)) == 1, "configs: %r" % os.listdir(config_dir))
    check(ctx.daemon.poll() is None, "foldersyncd died:\n" + log_tail())
    check(alive(), "foldersyncd does not answer")


def test_folder_methods():
    ok, out = gdbus(ctx.folder_path, FOLDER + ".Stop")
    check(ok, out)
    check("'paused'" in folder_prop("State"), "State after Stop: " + folder_prop("State"))
    ok, out = gdbus(ctx.folder_path, FOLDER + ".Start")
    check(ok, out)
    wait_for(lambda: "'idle'" in folder_prop("State"), 5, "State idle after Start")
    count = int(re.search(r"uint64 (\d+)", folder_prop("SyncCount")).group(1))
    ok, out = gdbus(ctx.folder_path, FOLDER + ".ForceSync")
    check(ok, out)
    wait_for(lambda: int(re.search(r"uint64 (\d+)", folder_prop("SyncCount")).group(1)) > count,
             5, "SyncCount to grow after ForceSync")
    check("inotify" in folder_prop("WatchMode") or "polling" in folder_prop("WatchMode"),
          folder_prop("WatchMode"))
    with open(os.path.join(ctx.root, "notes (conflict b 2026-01-02 030405).txt"), "w") as fh:
        fh.write("theirs")
    ok, out = gdbus(ctx.folder_path, FOLDER + ".ListConflicts")
    check(ok, out)
    check("('notes.txt', 'notes (conflict b 2026-01-02 030405).txt')" in out, out)
    expect_error("InvalidArgument", ctx.folder_path, FOLDER + ".ResolveConflict", "notes.txt", "yours")
    expect_error("NotFound", ctx.folder_path, FOLDER + ".ResolveConflict", "nothing.txt", "mine")
    ok, out = gdbus(ctx.folder_path, FOLDER + ".ResolveConflict", "notes.txt", "mine")
    check(ok, out)
    with open(os.path.join(ctx.root, "notes.txt")) as fh:
        check(fh.read() == "theirs", "ResolveConflict mine did not put the copy in place")
    ok, out = gdbus(ctx.folder_path, FOLDER + ".ConfirmDeletes")
    check(ok, out)


def test_sigterm_restart_restores():
    rc = stop_daemon()
    check(rc == 0, "foldersyncd exited %d on SIGTERM\n%s" % (rc, log_tail()))
    start_daemon()
    folders = get_prop(ROOT, MANAGER, "Folders")
    check(ctx.folder_path in folders, "folder not restored: %s" % folders)
    wait_for(lambda: "uint64 0" not in folder_prop("SyncCount"), 10, "a sync after restart")
    # still live after the restart
    with open(os.path.join(ctx.root, "after-restart.txt"), "wb") as fh:
        fh.write(b"again\n")
    b = device_b()

    def arrived():
        b.sync()
        return os.path.exists(os.path.join(b.root, "after-restart.txt"))
    wait_for(arrived, 8, "after-restart.txt on device b")


def test_remove_folder():
    ok, out = gdbus(ROOT, MANAGER + ".RemoveFolder", ctx.folder_path)
    check(ok, out)
    check(ctx.folder_path not in get_prop(ROOT, MANAGER, "Folders"), "still in Folders")
    config = os.path.join(env()["XDG_CONFIG_HOME"], "foldersync")
    check(os.listdir(os.path.join(config, "folders")) == [], "config left")
    # The key may be the only copy: it is kept aside, never deleted.
    check(os.listdir(os.path.join(config, "secrets")) == ["removed"], "secrets left")
    check(len(os.listdir(os.path.join(config, "secrets", "removed"))) == 1, "the key was not kept")
    check(os.path.exists(os.path.join(ctx.root, "hello.txt")), "files were removed")
    expect_error("NotFound", ROOT, MANAGER + ".RemoveFolder", ctx.folder_path)
    rc = stop_daemon()
    check(rc == 0, "foldersyncd exited %d on SIGTERM" % rc)


def main():
    for tool in ("dbus-daemon", "gdbus"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode != 0:
            print("1..0 # SKIP %s not installed" % tool)
            return 0
    ctx.ws = Workspace("daemon")
    os.makedirs(ctx.ws.path("run"), mode=0o700)
    start_bus()
    try:
        start_daemon()
        rc = run_tests([test_add_folder_uploads_live, test_remote_change_arrives,
                        test_bad_input_errors, test_folder_methods,
                        test_sigterm_restart_restores, test_remove_folder])
        if rc != 0:
            for line in log_tail().splitlines():
                print("# log: " + line)
        return rc
    finally:
        if ctx.daemon is not None:
            ctx.daemon.kill()
            ctx.daemon.wait()
        ctx.bus.terminate()
        ctx.bus.wait()
        ctx.ws.cleanup()


if __name__ == "__main__":
    sys.exit(main())
