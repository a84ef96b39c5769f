"""Parallel transfers (max_workers): 200 files of 256 KiB go up and come down
with 1 and with 4 workers; both converge, and the times are printed."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from fstest import Workspace, check, diff_snapshots, run_tests, snapshot  # noqa: E402

N_FILES = 200
SIZE = 256 * 1024


def round_trip(workers):
    ws = Workspace("parallel%d" % workers)
    try:
        key = ws.keyfile()
        store = ws.remote()
        a = ws.device("a", store, key)
        b = ws.device("b", store, key)
        for i in range(N_FILES):
            d = os.path.join(a.root, "d%02d" % (i % 10))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%03d.bin" % i), "wb") as fh:
                fh.write(os.urandom(SIZE))
        t0 = time.monotonic()
        s = a.sync("--max-workers", str(workers))
        up = time.monotonic() - t0
        check(s["files_up"] == N_FILES, "files_up %r" % s)
        t0 = time.monotonic()
        s = b.sync("--max-workers", str(workers))
        down = time.monotonic() - t0
        check(s["files_down"] == N_FILES and s["errors"] == 0, "files_down %r" % s)
        sa, sb = snapshot(a.root), snapshot(b.root)
        check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
        for dev in (a, b):
            left = [n for n in os.listdir(dev.root) if n.startswith(".foldersync.tmp")]
            check(not left, "staging left on %s: %r" % (dev.name, left))
        # a second sync has nothing to do
        for dev in (a, b):
            s = dev.sync("--max-workers", str(workers))
            check(s["files_up"] == 0 and s["files_down"] == 0, "second sync did work: %r" % s)
        return up, down
    finally:
        ws.cleanup()


def test_workers_1_vs_4():
    times = {w: round_trip(w) for w in (1, 4)}
    for w, (up, down) in times.items():
        print("# %d files of %d KiB, max-workers %d: up %.2f s, down %.2f s"
              % (N_FILES, SIZE // 1024, w, up, down))


def test_parallel_edits_between_syncs():
    """Downloads staged in parallel still respect the local state: files
    edited locally become conflicts, files deleted remotely go to the trash."""
    ws = Workspace("parallel-edits")
    try:
        key = ws.keyfile()
        store = ws.remote()
        a = ws.device("a", store, key)
        b = ws.device("b", store, key)
        for i in range(40):
            with open(os.path.join(a.root, "f%02d.txt" % i), "wb") as fh:
                fh.write(b"v1 %d" % i)
        a.sync()
        b.sync()
        for i in range(40):
            with open(os.path.join(a.root, "f%02d.txt" % i), "wb") as fh:
                fh.write(b"v2 from a %d" % i + os.urandom(SIZE))
        a.sync()
        for i in range(0, 40, 4):
            with open(os.path.join(b.root, "f%02d.txt" % i), "wb") as fh:
                fh.write(b"v2 from b %d" % i)
        s = b.sync()
        check(s["conflicts"] == 10 and s["files_down"] == 40, "%r" % s)
        a.sync()
        sa, sb = snapshot(a.root), snapshot(b.root)
        check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
        check(len(sa) == 50, "expected 40 files and 10 conflict copies, got %d" % len(sa))
    finally:
        ws.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([test_workers_1_vs_4, test_parallel_edits_between_syncs]))
