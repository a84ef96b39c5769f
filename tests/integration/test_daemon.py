"""foldersyncd end to end: two daemons, each on its own private session bus
with its own XDG dirs, sharing one store (local, or S3 under with-s3)."""
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from daemon import DaemonDevice, wait_for  # noqa: E402
from fstest import Failure, Workspace, check, diff_snapshots, run_tests, snapshot  # noqa: E402

BATCH_MS = 200
POLL_S = 1
# The bound for every latency; under sanitizers everything runs a few
# times slower, so the bound there is wider (the normal build checks the real one).
SLOWDOWN = 3 if os.environ.get("FOLDERSYNC_TEST_SANITIZED") else 1
LIMIT = (BATCH_MS / 1000 + POLL_S + 2) * SLOWDOWN


def pair(name, a_env=None):
    ws = Workspace(name)
    key = ws.keyfile()
    store = ws.remote()
    a = DaemonDevice(ws, "A", store, key, a_env)
    b = DaemonDevice(ws, "B", store, key)
    try:
        for dev in (a, b):
            dev.start()
            dev.add_folder("--batch-interval", str(BATCH_MS), "--poll-interval", str(POLL_S))
    except Exception:
        stop_all(ws, a, b)
        raise
    return ws, a, b


def stop_all(ws, *devices):
    for dev in devices:
        dev.stop()
    ws.cleanup()


def content(dev, rel):
    try:
        with open(os.path.join(dev.root, rel), "rb") as fh:
            return fh.read()
    except OSError:
        return None


def write(dev, rel, data):
    path = os.path.join(dev.root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def converged(a, b, timeout=30):
    def same():
        return snapshot(a.root) == snapshot(b.root)
    try:
        wait_for(same, timeout, "both folders to agree")
    except Exception:
        raise AssertionError("not converged:\n" + diff_snapshots(snapshot(a.root), snapshot(b.root)))


def test_live_changes_reach_the_other_daemon():
    ws, a, b = pair("live")
    try:
        latencies = {}
        write(a, "notes/new.txt", b"created on A")
        latencies["create"] = wait_for(lambda: content(b, "notes/new.txt") == b"created on A", 30, "create")
        write(a, "notes/new.txt", b"modified on A")
        latencies["modify"] = wait_for(lambda: content(b, "notes/new.txt") == b"modified on A", 30, "modify")
        os.rename(os.path.join(a.root, "notes/new.txt"), os.path.join(a.root, "notes/renamed.txt"))
        latencies["rename"] = wait_for(lambda: content(b, "notes/renamed.txt") == b"modified on A"
                                       and content(b, "notes/new.txt") is None, 30, "rename")
        os.unlink(os.path.join(a.root, "notes/renamed.txt"))
        latencies["delete"] = wait_for(lambda: content(b, "notes/renamed.txt") is None, 30, "delete")
        os.makedirs(os.path.join(a.root, "empty dir"))
        latencies["mkdir"] = wait_for(lambda: os.path.isdir(os.path.join(b.root, "empty dir")), 30, "mkdir")
        write(b, "from-b.txt", b"created on B")
        latencies["reverse"] = wait_for(lambda: content(a, "from-b.txt") == b"created on B", 30, "B to A")
        print("# latencies (s), bound %.1f: %s" % (LIMIT, ", ".join("%s %.2f" % kv for kv in latencies.items())))
        for what, seconds in latencies.items():
            check(seconds < LIMIT, "%s took %.2f s (bound %.1f s)" % (what, seconds, LIMIT))
        converged(a, b)
    finally:
        stop_all(ws, a, b)


def test_single_changes_skip_the_walk():
    """After its first whole sync, the daemon syncs the paths the watcher
    reported without walking the folder; what needs a walk (a new directory,
    an ignore file, a non-ASCII name) still gets one, and ignored files stay
    ignored either way."""
    ws = Workspace("targeted")
    key = ws.keyfile()
    store = ws.remote()
    a = DaemonDevice(ws, "A", store, key, wrapper=["env", "G_MESSAGES_DEBUG=FolderSync"])
    b = DaemonDevice(ws, "B", store, key)
    try:
        write(a, ".foldersyncignore", b"*.tmp\nbuild/\n")
        for i in range(20):
            write(a, "docs/f%02d.txt" % i, b"first %d" % i)
        os.makedirs(os.path.join(a.root, "build"))
        # A's syncs come from its watcher only; B polls to see them.
        for dev, poll in ((a, "3600"), (b, str(POLL_S))):
            dev.start()
            dev.add_folder("--batch-interval", str(BATCH_MS), "--poll-interval", poll)
        wait_for(lambda: content(b, "docs/f19.txt") == b"first 19", 30, "the first sync")

        def walks():
            log = open(os.path.join(a.home, "daemon.log"), "rb").read().decode(errors="replace")
            return log.count("without a walk")
        before = walks()
        write(a, "docs/f03.txt", b"edited")
        wait_for(lambda: content(b, "docs/f03.txt") == b"edited", 30, "an edit")
        os.unlink(os.path.join(a.root, "docs/f04.txt"))
        wait_for(lambda: content(b, "docs/f04.txt") is None, 30, "a deletion")
        write(a, "docs/new.txt", b"new")
        write(a, "docs/scratch.tmp", b"ignored")
        write(a, "build/out.o", b"ignored too")
        wait_for(lambda: content(b, "docs/new.txt") == b"new", 30, "a new file")
        targeted = walks() - before
        print("# %d of the syncs went without a walk" % targeted)
        check(targeted >= 3, "only %d targeted syncs for three separate changes" % targeted)
        write(a, "docs/new dir/inside.txt", b"in a new directory")
        write(a, "docs/\u00e9t\u00e9.txt", b"accented")
        wait_for(lambda: content(b, "docs/new dir/inside.txt") == b"in a new directory", 30, "a new dir")
        wait_for(lambda: content(b, "docs/\u00e9t\u00e9.txt") == b"accented", 30, "a non-ASCII name")
        time.sleep(2 * BATCH_MS / 1000.0)
        check(content(b, "docs/scratch.tmp") is None and content(b, "build/out.o") is None,
              "an ignored file was synced")
        converged_but_ignored = snapshot(b.root)
        expected = {k: v for k, v in snapshot(a.root).items()
                    if not k.endswith(b".tmp") and k != b"build" and not k.startswith(b"build/")}
        check(converged_but_ignored == expected,
              "B differs:\n" + diff_snapshots(expected, converged_but_ignored))
    finally:
        stop_all(ws, a, b)


def test_many_files_make_few_batches():
    ws, a, b = pair("batches")
    try:
        wait_for(lambda: a.status()["state"] == "idle", 30, "A idle")
        before = a.status()["sync_count"]
        for i in range(1000):
            write(a, "drop/f%04d.txt" % i, b"file %d" % i)
        wait_for(lambda: len(os.listdir(os.path.join(b.root, "drop"))) == 1000
                 if os.path.isdir(os.path.join(b.root, "drop")) else False, 120, "1000 files on B")
        runs = a.status()["sync_count"] - before
        print("# 1000 files made %d sync runs on A (remote polls included)" % runs)
        check(runs <= 12, "1000 files took %d sync runs" % runs)
    finally:
        stop_all(ws, a, b)


def test_sigkill_mid_transfer():
    ws, a, b = pair("sigkill")
    try:
        big = os.urandom(1 << 20) * 128  # 128 MiB: multipart on S3, long enough to interrupt
        write(a, "big.bin", big)
        wait_for(lambda: a.status()["state"] in ("syncing", "scanning"), 30, "A to start uploading")
        time.sleep(0.5)
        a.kill_daemon(signal.SIGKILL)
        a.start_daemon()
        wait_for(lambda: content(b, "big.bin") == big, 180, "the big file on B")
        write(b, "after.txt", b"after the crash")
        wait_for(lambda: content(a, "after.txt") == b"after the crash", 60, "A alive again")
        # and the other direction: kill B while it downloads
        big2 = os.urandom(1 << 20) * 96
        write(a, "big2.bin", big2)
        wait_for(lambda: any(n.startswith(".foldersync.tmp") for n in os.listdir(b.root)), 60,
                 "B to start downloading")
        b.kill_daemon(signal.SIGKILL)
        check(content(b, "big2.bin") is None, "a half-written big2.bin is visible on B")
        b.start_daemon()
        wait_for(lambda: content(b, "big2.bin") == big2, 180, "big2 on B")
        converged(a, b)
        for dev in (a, b):
            leftovers = [n for n in os.listdir(dev.root) if n.startswith(".foldersync.tmp")]
            check(not leftovers, "temp files left on %s: %r" % (dev.name, leftovers))
    finally:
        stop_all(ws, a, b)


def test_polling_fallback_still_syncs():
    ws = Workspace("polling")
    key = ws.keyfile()
    store = ws.remote()
    a = DaemonDevice(ws, "A", store, key, {"FOLDERSYNC_MAX_WATCHES": "1"})
    b = DaemonDevice(ws, "B", store, key)
    try:
        for d in ("x", "y", "z"):
            os.makedirs(os.path.join(a.root, d))
        for dev in (a, b):
            dev.start()
            dev.add_folder("--batch-interval", str(BATCH_MS), "--poll-interval", str(POLL_S))
        wait_for(lambda: a.status()["watch_mode"] == "polling", 10, "A to fall back to polling")
        write(a, "y/polled.txt", b"seen by polling")
        seconds = wait_for(lambda: content(b, "y/polled.txt") == b"seen by polling", 30, "polled file on B")
        print("# polling fallback: %.2f s" % seconds)
        check(seconds < LIMIT + POLL_S, "polling took %.2f s" % seconds)
    finally:
        stop_all(ws, a, b)


def test_cli_activates_the_daemon():
    """No daemon running: the CLI's first call makes the bus start it from
    the D-Bus activation file (as installed from data/, Exec pointed at the
    build tree here)."""
    from daemon import FOLDERSYNCD
    ws = Workspace("activation")
    a = DaemonDevice(ws, "A", ws.remote(), ws.keyfile())
    try:
        services = ws.path("services")
        os.makedirs(services)
        with open(os.path.join(services, "org.toolbox.FolderSync.service"), "w") as fh:
            fh.write("[D-BUS Service]\nName=org.toolbox.FolderSync\nExec=%s\n" % FOLDERSYNCD)
        a.start_bus(service_dir=services)
        a.add_folder()
        st = a.status()
        check(st is not None and st["path"] == a.root, "not activated: %r" % st)
        with open(os.path.join(a.root, "x.txt"), "wb") as fh:
            fh.write(b"x")
        wait_for(lambda: a.status()["sync_count"] >= 2, 30, "the activated daemon to sync")
    finally:
        # The activated daemon is the bus's child: it exits when the bus goes.
        a.stop()
        ws.cleanup()


def without_prefix(args):
    i = args.index("--prefix")
    return args[:i] + args[i + 2:]


def test_kernel_watch_limit_falls_back():
    """The real limit, not a forced one: in a user namespace whose
    max_user_watches is 60, two folders of 41 directories cannot both be
    watched; the second must say polling and still sync."""
    # user.max_inotify_watches is the namespace's own limit. (Not
    # fs.inotify.max_user_watches: that is the machine's, even when written
    # from inside a namespace by real root.)
    limit_file = "/proc/sys/user/max_inotify_watches"
    machine = open("/proc/sys/fs/inotify/max_user_watches").read()
    probe = subprocess.run(["unshare", "-U", "-r", "sh", "-c", "echo 60 > " + limit_file], capture_output=True)
    if open("/proc/sys/fs/inotify/max_user_watches").read() != machine:
        raise Failure("setting the namespace's inotify limit changed the machine's")
    if probe.returncode != 0:
        from fstest import Skip
        raise Skip("cannot set %s in a user namespace here: %s" % (limit_file, probe.stderr.decode().strip()))
    wrapper = ["unshare", "-U", "-r", "sh", "-c", 'echo 60 > %s && exec "$0"' % limit_file]
    ws = Workspace("watchlimit")
    key = ws.keyfile()
    store = ws.remote()
    a = DaemonDevice(ws, "A", store, key, wrapper=wrapper)
    try:
        a.start()
        second = ws.path("A", "second")
        for root in (a.root, second):
            for i in range(40):
                os.makedirs(os.path.join(root, "d%02d" % i))
        a.add_folder("--batch-interval", str(BATCH_MS), "--poll-interval", str(POLL_S), "--prefix", "one")
        a.cli("start", "--path", second, "--key-file", key, "--prefix", "two",
              *(without_prefix(store.args()) if not isinstance(store, str) else ["--store", store]),
              "--batch-interval", str(BATCH_MS), "--poll-interval", str(POLL_S))
        folders = {f["path"]: f for f in __import__("json").loads(a.cli("status", "--json").stdout)["folders"]}
        modes = sorted(f["watch_mode"] for f in folders.values())
        print("# watch modes with max_user_watches=60: %s" % modes)
        check(modes == ["inotify", "polling"], "modes %r" % modes)
        polled = [p for p, f in folders.items() if f["watch_mode"] == "polling"][0]
        prefix = "one" if polled == a.root else "two"
        with open(os.path.join(polled, "d07", "late.txt"), "wb") as fh:
            fh.write(b"seen by polling")
        # another device reading that prefix gets the file: the polled folder synced it
        c = ws.device("C", store, key)

        def arrived():
            c.sync("--prefix", prefix, "--confirm-deletes")
            return os.path.exists(os.path.join(c.root, "d07", "late.txt"))
        seconds = wait_for(arrived, LIMIT + POLL_S, "the file written in the polled folder")
        print("# polled folder synced a new file in %.2f s" % seconds)
    finally:
        a.stop()
        ws.cleanup()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_idle_daemon_uses_no_cpu():
    ws = Workspace("idle")
    key = ws.keyfile()
    a = DaemonDevice(ws, "A", ws.remote(), key)
    try:
        a.start()
        for i in range(200):
            write(a, "d%d/f%d" % (i % 10, i), b"x")
        a.add_folder()  # default intervals: remote poll every 30 s
        wait_for(lambda: a.status()["state"] == "idle" and a.status()["last_sync"] > 0, 60, "idle")
        time.sleep(0.5)
        before = cpu_seconds(a.daemon.pid)
        time.sleep(3)
        used = cpu_seconds(a.daemon.pid) - before
        print("# idle daemon used %.3f s of CPU in 3 s" % used)
        check(used < 0.05 * SLOWDOWN, "idle daemon used %.3f s of CPU in 3 s" % used)
    finally:
        stop_all(ws, a)


def test_stop_releases_and_guard_holds():
    """A stopped folder can be synced by hand; a ConfirmDeletes with nothing
    held back does not wave later mass deletions through."""
    ws, a, b = pair("guard")
    try:
        for i in range(20):
            write(a, "docs/f%02d" % i, b"%d" % i)
        wait_for(lambda: os.path.isdir(os.path.join(b.root, "docs")) and
                 len(os.listdir(os.path.join(b.root, "docs"))) == 20, 60, "20 files on B")
        a.cli("stop", "--path", a.root)
        proc = subprocess.run([sys.argv[1], "sync", "--path", a.root, "--key-file", a.key] +
                              (a.store.args() if not isinstance(a.store, str) else ["--store", a.store]),
                              env=a.env(), capture_output=True)
        check(proc.returncode == 0, "one-shot sync of a stopped folder: %d %s" % (proc.returncode, proc.stderr))
        folder = "/org/toolbox/FolderSync/folder/" + a.status()["id"]
        subprocess.run(["gdbus", "call", "--session", "--dest", "org.toolbox.FolderSync", "--object-path",
                        folder, "--method", "org.toolbox.FolderSync.Folder.ConfirmDeletes"],
                       env=a.env(), check=True, capture_output=True)
        shutil.rmtree(os.path.join(a.root, "docs"))  # an unmounted disk, say
        a.cli("start", "--path", a.root)
        wait_for(lambda: a.status()["held_deletes"] > 0, 30, "A to hold the deletions back")
        time.sleep(POLL_S * 2)
        check(len(os.listdir(os.path.join(b.root, "docs"))) == 20, "B lost files to an early confirmation")
    finally:
        stop_all(ws, a, b)


def test_touching_a_held_file_keeps_it():
    """Deletions by another device that the guard holds back stay held when
    the user touches one of those files (a sync of that one path must not
    apply its deletion)."""
    ws, a, b = pair("heldtouch")
    try:
        for i in range(20):
            write(a, "docs/f%02d" % i, b"%d" % i)
        wait_for(lambda: os.path.isdir(os.path.join(b.root, "docs")) and
                 len(os.listdir(os.path.join(b.root, "docs"))) == 20, 60, "20 files on B")
        for i in range(15):
            os.unlink(os.path.join(b.root, "docs/f%02d" % i))
        # B's own guard holds them first; B's user confirms.
        wait_for(lambda: b.status()["held_deletes"] >= 15, 30, "B to hold its deletions back")
        subprocess.run(["gdbus", "call", "--session", "--dest", "org.toolbox.FolderSync", "--object-path",
                        "/org/toolbox/FolderSync/folder/" + b.status()["id"],
                        "--method", "org.toolbox.FolderSync.Folder.ConfirmDeletes"],
                       env=b.env(), check=True, capture_output=True)
        wait_for(lambda: a.status()["held_deletes"] >= 15, 30, "A to hold the deletions back")
        os.chmod(os.path.join(a.root, "docs/f03"), 0o600)
        os.utime(os.path.join(a.root, "docs/f04"))
        time.sleep(BATCH_MS / 1000.0 * 4 + POLL_S)
        check(all(content(a, "docs/f%02d" % i) is not None for i in range(15)),
              "a held deletion was applied on A: %r" % sorted(os.listdir(os.path.join(a.root, "docs"))))
        check(a.status()["held_deletes"] >= 15, "the deletions are no longer held: %r" % a.status())
    finally:
        stop_all(ws, a, b)


def test_folders_restored_after_restart():
    ws, a, b = pair("restore")
    try:
        a.kill_daemon()
        write(a, "while-down.txt", b"written while the daemon was down")
        a.start_daemon()
        wait_for(lambda: content(b, "while-down.txt") is not None, 30, "change made while down")
        st = a.status()
        check(st is not None and st["path"] == a.root, "folder not restored: %r" % st)
    finally:
        stop_all(ws, a, b)


if __name__ == "__main__":
    sys.exit(run_tests([test_single_changes_skip_the_walk, test_touching_a_held_file_keeps_it, test_live_changes_reach_the_other_daemon, test_many_files_make_few_batches,
                        test_polling_fallback_still_syncs, test_folders_restored_after_restart,
                        test_stop_releases_and_guard_holds, test_kernel_watch_limit_falls_back,
                        test_cli_activates_the_daemon,
                        test_idle_daemon_uses_no_cpu, test_sigkill_mid_transfer]))
