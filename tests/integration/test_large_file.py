"""A 2 GiB file syncs up and down in bounded memory (peak RSS under 64 MiB)."""
import hashlib
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from fstest import Skip, Workspace, check, run_tests  # noqa: E402

SIZE = int(os.environ.get("FOLDERSYNC_TEST_LARGE_SIZE", str(2 << 30)))
RSS_LIMIT_KIB = 64 * 1024


def write_random(path, size):
    h = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as fh:
        for i in range(size // len(block)):
            # vary every block cheaply so nothing repeats
            chunk = i.to_bytes(8, "little") + block[8:]
            h.update(chunk)
            fh.write(chunk)
    return h.hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(1 << 20)
            if not b:
                return h.hexdigest()
            h.update(b)


def test_large_file_bounded_memory():
    ws = Workspace("large")
    key = ws.keyfile()
    store = ws.store()
    a, b = ws.device("a", store, key), ws.device("b", store, key)
    digest = write_random(os.path.join(a.root, "big.bin"), SIZE)
    t0 = time.monotonic()
    s = a.sync()
    t1 = time.monotonic()
    check(s["files_up"] == 1 and s["bytes_up"] == SIZE, "upload %r" % s)
    s = b.sync()
    t2 = time.monotonic()
    check(s["files_down"] == 1 and s["bytes_down"] == SIZE, "download %r" % s)
    check(sha256_file(os.path.join(b.root, "big.bin")) == digest, "content differs after the round trip")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("# %d MiB: up %.1f s, down %.1f s, peak RSS of a sync %.1f MiB"
          % (SIZE >> 20, t1 - t0, t2 - t1, peak / 1024))
    ws.cleanup()
    if os.environ.get("FOLDERSYNC_TEST_SANITIZED"):
        raise Skip("peak RSS is not meaningful under AddressSanitizer (shadow memory)")
    check(peak < RSS_LIMIT_KIB, "peak RSS %.1f MiB is over 64 MiB" % (peak / 1024))


if __name__ == "__main__":
    sys.exit(run_tests([test_large_file_bounded_memory]))
