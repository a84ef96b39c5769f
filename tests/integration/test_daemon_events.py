"""foldersyncd's live reporting and conflict resolution, watched on the
private bus with `gdbus monitor`: FileSynced and ConflictDetected signals,
Progress and PendingUploads changing during a large transfer, and
ResolveConflict mine/theirs/both on disk and on the other device."""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from daemon import DaemonDevice, wait_for  # noqa: E402
from fstest import Workspace, check, diff_snapshots, run_tests, snapshot  # noqa: E402

NAME = "org.toolbox.FolderSync"
FOLDER = "org.toolbox.FolderSync.Folder"


class Monitor:
    """`gdbus monitor` on a device's bus, its output in a file."""

    def __init__(self, dev):
        self.path = os.path.join(dev.home, "monitor-%d.log" % time.monotonic_ns())
        self.fh = open(self.path, "wb")
        self.proc = subprocess.Popen(["gdbus", "monitor", "--session", "--dest", NAME],
                                     env=dev.env(), stdout=self.fh, stderr=subprocess.STDOUT)
        time.sleep(0.3)

    def text(self):
        with open(self.path, "rb") as fh:
            return fh.read().decode(errors="replace")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.fh.close()


def gdbus(dev, obj, method, *args):
    proc = subprocess.run(["gdbus", "call", "--session", "--dest", NAME, "--object-path", obj,
                           "--method", method] + list(args),
                          env=dev.env(), capture_output=True, timeout=60)
    return proc.returncode == 0, (proc.stdout if proc.returncode == 0 else proc.stderr).decode()


def folder_path(dev):
    ok, out = gdbus(dev, "/org/toolbox/FolderSync", "org.freedesktop.DBus.Properties.Get",
                    "org.toolbox.FolderSync.Manager", "Folders")
    check(ok, out)
    return re.search(r"'(/org/toolbox/FolderSync/folder/[^']+)'", out).group(1)


def write(dev, rel, data):
    path = os.path.join(dev.root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def content(dev, rel):
    try:
        with open(os.path.join(dev.root, rel), "rb") as fh:
            return fh.read()
    except OSError:
        return None


def pair(name):
    ws = Workspace(name)
    key = ws.keyfile()
    store = ws.remote()
    a = DaemonDevice(ws, "A", store, key)
    b = DaemonDevice(ws, "B", store, key)
    for dev in (a, b):
        dev.start()
        dev.add_folder("--batch-interval", "200", "--poll-interval", "1")
    return ws, a, b


def stop_all(ws, *devices):
    for dev in devices:
        dev.stop()
    ws.cleanup()


def converged(a, b, timeout=60):
    try:
        wait_for(lambda: snapshot(a.root) == snapshot(b.root), timeout, "both folders to agree")
    except Exception:
        raise AssertionError("not converged:\n" + diff_snapshots(snapshot(a.root), snapshot(b.root)))


def test_file_synced_signals_and_progress():
    ws, a, b = pair("events")
    try:
        wait_for(lambda: a.status()["state"] == "idle" and b.status()["state"] == "idle", 30, "idle")
        ma, mb = Monitor(a), Monitor(b)
        try:
            write(a, "small/one.txt", b"one")
            write(a, "small/two.txt", b"two")
            wait_for(lambda: content(b, "small/two.txt") == b"two", 30, "two.txt on B")
            wait_for(lambda: "FileSynced ('small/two.txt', 'down')" in mb.text(), 10,
                     "FileSynced down on B")
            text = ma.text()
            for f in ("small/one.txt", "small/two.txt"):
                check("FileSynced ('%s', 'up')" % f in text, "no FileSynced up for %s on A:\n%s"
                      % (f, text[-2000:]))
            os.unlink(os.path.join(a.root, "small/one.txt"))
            wait_for(lambda: content(b, "small/one.txt") is None, 30, "deletion on B")
            wait_for(lambda: "FileSynced ('small/one.txt', 'deleted-local')" in mb.text(), 10,
                     "FileSynced deleted-local on B")
            check("FileSynced ('small/one.txt', 'deleted-remote')" in ma.text(), ma.text()[-2000:])

            # a large transfer: 120 files of 1 MiB
            for i in range(120):
                write(a, "big/f%03d.bin" % i, os.urandom(1 << 20))
            wait_for(lambda: len(os.listdir(os.path.join(b.root, "big"))) == 120
                     if os.path.isdir(os.path.join(b.root, "big")) else False, 180, "120 files on B")
            converged(a, b)
            time.sleep(0.5)
            text = ma.text()
            pending = [int(v) for v in re.findall(r"'PendingUploads': <uint32 (\d+)>", text)]
            progress = set(re.findall(r"'Progress': <\(uint64 (\d+), uint64 (\d+), uint64 (\d+), "
                                      r"uint64 (\d+)\)>", text))
            states = set(re.findall(r"'State': <'(\w+)'>", text))
            print("# A: %d PendingUploads updates (max %d), %d distinct Progress values, states %s"
                  % (len(pending), max(pending or [0]), len(progress), sorted(states)))
            check(any(p > 0 for p in pending), "PendingUploads never above 0: %r" % pending)
            check(len(progress) >= 3, "Progress changed only %d times" % len(progress))
            check({"scanning", "syncing", "idle"} <= states, "states seen: %r" % states)
            midway = [p for p in progress if 0 < int(p[0]) < int(p[1])]
            check(midway, "no Progress value between start and end: %r" % progress)
            pending_b = [int(v) for v in re.findall(r"'PendingDownloads': <uint32 (\d+)>", mb.text())]
            check(any(p > 0 for p in pending_b), "PendingDownloads on B never above 0")
        finally:
            ma.stop()
            mb.stop()
    finally:
        stop_all(ws, a, b)


def test_resolve_conflict():
    ws, a, b = pair("resolve")
    try:
        for f in ("mine.txt", "theirs.txt", "both.txt"):
            write(a, f, b"base " + f.encode())
        converged(a, b)
        a_folder = folder_path(a)
        ok, out = gdbus(a, a_folder, FOLDER + ".Stop")
        check(ok, out)
        for f in ("mine.txt", "theirs.txt", "both.txt"):
            write(b, f, b"B's " + f.encode())
        wait_for(lambda: b.status()["state"] == "idle" and b.status()["last_sync"] > 0, 30, "B")
        time.sleep(1.5)  # B's upload done (two poll ticks)
        for f in ("mine.txt", "theirs.txt", "both.txt"):
            write(a, f, b"A's " + f.encode())
        ma = Monitor(a)
        try:
            ok, out = gdbus(a, a_folder, FOLDER + ".Start")
            check(ok, out)
            wait_for(lambda: ma.text().count("ConflictDetected") >= 3, 30, "3 ConflictDetected on A")
        finally:
            ma.stop()
        ok, out = gdbus(a, a_folder, FOLDER + ".ListConflicts")
        check(ok, out)
        pairs = dict((o, c) for o, c in re.findall(r"\('([^']*)', '([^']*)'\)", out))
        check(set(pairs) == {"mine.txt", "theirs.txt", "both.txt"}, out)
        for f in ("mine.txt", "theirs.txt", "both.txt"):
            check(content(a, f) == b"B's " + f.encode(), "original of %s is not B's" % f)
            check(content(a, pairs[f]) == b"A's " + f.encode(), "copy of %s is not A's" % f)
        converged(a, b)

        ok, out = gdbus(a, a_folder, FOLDER + ".ResolveConflict", "nope.txt", "mine")
        check(not ok and "org.toolbox.FolderSync.Error.NotFound" in out, out)
        ok, out = gdbus(a, a_folder, FOLDER + ".ResolveConflict", pairs["mine.txt"], "keep")
        check(not ok and "org.toolbox.FolderSync.Error.InvalidArgument" in out, out)
        # the copy by its name; the others by the original's name
        ok, out = gdbus(a, a_folder, FOLDER + ".ResolveConflict", pairs["mine.txt"], "mine")
        check(ok, out)
        ok, out = gdbus(a, a_folder, FOLDER + ".ResolveConflict", "theirs.txt", "theirs")
        check(ok, out)
        ok, out = gdbus(a, a_folder, FOLDER + ".ResolveConflict", "both.txt", "both")
        check(ok, out)

        expected = {
            "mine.txt": b"A's mine.txt",
            "theirs.txt": b"B's theirs.txt",
            "both.txt": b"B's both.txt",
            "both (2).txt": b"A's both.txt",
        }
        for dev in (a, b):
            wait_for(lambda: all(content(dev, k) == v for k, v in expected.items())
                     and not any("(conflict" in n for n in os.listdir(dev.root)), 30,
                     "resolutions on %s" % dev.name)
        converged(a, b)
        ok, out = gdbus(a, a_folder, FOLDER + ".ListConflicts")
        check(ok and "conflict" not in out, out)
        trash = os.path.join(a.root, ".foldersync.trash")
        trashed = [f for _, _, fs in os.walk(trash) for f in fs]
        check(os.path.basename(pairs["theirs.txt"]) in trashed, "theirs' copy not in A's trash: %r"
              % trashed)
    finally:
        stop_all(ws, a, b)


def test_folder_paired_signal():
    """Manager.FolderPaired(o) follows a successful Pair (the applet's
    "paired" notification), and never an AddFolder."""
    ws = Workspace("paired")
    a = DaemonDevice(ws, "A", ws.store(), ws.keyfile())
    b = DaemonDevice(ws, "B", a.store, None)
    try:
        a.start()
        b.start()
        ma, mb = Monitor(a), Monitor(b)
        try:
            a.add_folder("--batch-interval", "200", "--poll-interval", "1")
            out = a.cli("generate-token", "--path", a.root).stdout.decode()
            token = re.search(r"([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})", out).group(1)
            b.cli("pair", "--token", token, "--path", b.root, "--store", b.store)
            b_folder = folder_path(b)
            wait_for(lambda: "FolderPaired (objectpath '%s',)" % b_folder in mb.text(), 10,
                     "FolderPaired on B")
            check("FolderPaired" not in ma.text(), "FolderPaired after AddFolder:\n" + ma.text()[-2000:])
        finally:
            ma.stop()
            mb.stop()
    finally:
        stop_all(ws, a, b)


if __name__ == "__main__":
    sys.exit(run_tests([test_file_synced_signals_and_progress, test_resolve_conflict,
                        test_folder_paired_signal]))
