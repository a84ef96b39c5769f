"""storage-s3 end to end, under tests/s3/with-s3 (s3rver behind the SigV4-
verifying proxy): errors, secrets, and interoperability with rclone."""
import json
import os
import random
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from fstest import S3Store, Skip, Workspace, check, diff_snapshots, run_tests, snapshot  # noqa: E402

EXIT_STORE = 5
EXIT_PARTIAL = 7
CONTROL = os.environ.get("FOLDERSYNC_TEST_S3_CONTROL", "")
# set by tests/s3/with-s3 --tls: the proxy then speaks https only, with a
# certificate from this throwaway CA (and S3Store passes it as --ca-file)
CA_FILE = os.environ.get("FOLDERSYNC_TEST_S3_CA_FILE", "")


def proxy(path, body=None):
    """The proxy's control endpoint: "stats" or "reset"."""
    req = urllib.request.Request(CONTROL.rstrip("/") + "/" + path, data=body,
                                 method="POST" if body is not None else "GET")
    ctx = ssl.create_default_context(cafile=CA_FILE) if CA_FILE else None
    with urllib.request.urlopen(req, context=ctx) as resp:
        return json.loads(resp.read() or b"{}")


def s3_pair(name):
    ws = Workspace(name)
    key = ws.keyfile()
    store = ws.remote()
    return ws, ws.device("a", store, key), ws.device("b", store, key)


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)


def test_wrong_secret_fails_fast():
    ws, a, _ = s3_pair("wrongsecret")
    write(os.path.join(a.root, "x.txt"), b"x")
    secret = "this-is-not-the-secret-0123456789"
    env = a.env()
    env["AWS_SECRET_ACCESS_KEY"] = secret
    proxy("reset", b"{}")
    cmd = [sys.argv[1], "sync", "--path", a.root, "--key-file", a.key] + a.store.args()
    proc = subprocess.run(cmd, env=env, capture_output=True)
    stats = proxy("stats")
    err = proc.stderr.decode()
    check(proc.returncode == EXIT_STORE, "exit %d: %s" % (proc.returncode, err))
    check("SignatureDoesNotMatch" in err or "credentials" in err.lower() or "denied" in err.lower(),
          "unclear error: %r" % err)
    check(len(err.strip().splitlines()) == 1, "not one line: %r" % err)
    check(stats["requests"] <= 2, "%d requests for a wrong secret" % stats["requests"])
    check(secret not in err and secret not in proc.stdout.decode(), "the secret was printed")
    print("# wrong secret: %d request(s), error: %s" % (stats["requests"], err.strip()))
    ws.cleanup()


def test_clock_skew_is_explained():
    """A device whose clock is an hour ahead gets told so, once, not retried
    (ahead, so the TLS run's fresh certificate is already valid)."""
    import shutil
    from fstest import Skip
    if shutil.which("faketime") is None:
        raise Skip("faketime is not installed (apt-get install faketime)")
    ws, a, _ = s3_pair("skew")
    write(os.path.join(a.root, "x.txt"), b"x")
    proxy("reset", b"{}")
    cmd = ["faketime", "-f", "+1h", sys.argv[1], "sync", "--path", a.root, "--key-file", a.key] + a.store.args()
    env = a.env()
    # libfaketime is preloaded before the ASan runtime in sanitized builds
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    proc = subprocess.run(cmd, env=env, capture_output=True)
    err = proc.stderr.decode()
    stats = proxy("stats")
    check(proc.returncode == EXIT_STORE, "exit %d: %s" % (proc.returncode, err))
    check("clock" in err.lower(), "the message does not mention the clock: %r" % err)
    check(stats["requests"] <= 2, "%d requests for a skewed clock" % stats["requests"])
    print("# skewed clock: %s" % err.strip())
    ws.cleanup()


def test_missing_bucket():
    ws, a, _ = s3_pair("nobucket")
    a.store.bucket = "no-such-bucket-anywhere"
    proc = a.run()
    err = proc.stderr.decode()
    check(proc.returncode == EXIT_STORE, "exit %d: %s" % (proc.returncode, err))
    check("no-such-bucket-anywhere" in err, "the bucket is not named: %r" % err)
    ws.cleanup()


def rclone(*args, check_rc=True):
    # rclone 1.60 refuses any AWS_CA_BUNDLE on plain http
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update({
        "RCLONE_CONFIG_T_TYPE": "s3",
        "RCLONE_CONFIG_T_PROVIDER": "Other",
        "RCLONE_CONFIG_T_ENDPOINT": os.environ["FOLDERSYNC_TEST_S3_ENDPOINT"],
        "RCLONE_CONFIG_T_ACCESS_KEY_ID": os.environ["FOLDERSYNC_TEST_S3_ACCESS_KEY"],
        "RCLONE_CONFIG_T_SECRET_ACCESS_KEY": os.environ["FOLDERSYNC_TEST_S3_SECRET_KEY"],
        "RCLONE_CONFIG_T_REGION": os.environ.get("FOLDERSYNC_TEST_S3_REGION", "us-east-1"),
        "RCLONE_CONFIG_T_FORCE_PATH_STYLE": "true",
    })
    # --fast-list: s3rver drops common prefixes from some delimiter listings,
    # so rclone's directory-by-directory walk would miss whole subtrees.
    tls = ["--ca-cert", CA_FILE] if CA_FILE else []
    proc = subprocess.run(["rclone", "--config", "/dev/null", "--fast-list"] + tls + list(args), env=env,
                          capture_output=True)
    if check_rc:
        check(proc.returncode == 0, "rclone %s: %s" % (" ".join(args), proc.stderr.decode()[-500:]))
    return proc


def test_interop_with_rclone():
    """rclone lists and fetches what the plugin wrote, byte-exact; and the
    plugin reads a store that rclone copied, which decrypts only if every
    byte is intact."""
    ws, a, _ = s3_pair("interop")
    files = {"doc.txt": b"hello from foldersync\n" * 100, "sub/big.bin": os.urandom(20 << 20),
             "empty": b""}
    for name, data in files.items():
        write(os.path.join(a.root, name), data)
    a.sync()
    bucket = os.environ["FOLDERSYNC_TEST_S3_BUCKET"]
    src = "T:%s/%s" % (bucket, a.store.prefix)
    listed = rclone("lsf", "-R", "--files-only", src).stdout.decode().split()
    check(any(k.startswith("o/") for k in listed) and any(k.startswith("journal/") for k in listed),
          "rclone listing: %r" % listed)
    # rclone downloads every object to a local directory and uploads them
    # again under another prefix (multipart for the big one): no server-side
    # copy, so both directions of the wire format are exercised.
    local = ws.path("rclone-copy")
    dst_prefix = a.store.prefix + "-copied-by-rclone"
    rclone("copy", src, local)
    rclone("copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", local,
           "T:%s/%s" % (bucket, dst_prefix))
    c = ws.device("c", S3Store(dst_prefix), a.key)
    s = c.sync()
    check(s["files_down"] == 3 and s["errors"] == 0, "reading rclone's copy: %r" % s)
    sa, sc = snapshot(a.root), snapshot(c.root)
    check(sa == sc, "trees differ:\n" + diff_snapshots(sa, sc))
    ws.cleanup()


def test_two_devices_basic_on_s3():
    ws, a, b = s3_pair("basic")
    write(os.path.join(a.root, "notes", "one.txt"), b"one")
    write(os.path.join(a.root, "big.bin"), os.urandom(40 << 20))  # above multipart-threshold: one spooled PUT
    a.sync()
    s = b.sync()
    check(s["files_down"] == 2, "summary %r" % s)
    os.unlink(os.path.join(b.root, "notes", "one.txt"))
    b.sync()
    a.sync()
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    ws.cleanup()


def spool_dir(dev):
    """storage-s3's default spool-dir for dev: $XDG_CACHE_HOME/foldersync/spool."""
    return os.path.join(dev.home, "cache", "foldersync", "spool")


def run_measured(dev, ws):
    """dev.run() plus the sync's peak RSS in KiB (None without GNU time).
    Measured by /usr/bin/time, not by our own wait4(): Linux counts the
    forked parent's peak (this Python process) in the child's ru_maxrss."""
    cmd = [sys.argv[1], "sync", "--json", "--path", dev.root, "--key-file", dev.key] + dev.store.args()
    if not os.access("/usr/bin/time", os.X_OK):
        return subprocess.run(cmd, env=dev.env(), capture_output=True), None
    out = ws.path("time.out")
    env = dev.env()
    # meson sets it: glibc then fills every allocation, so a 16 MiB buffer
    # that holds 5 bytes counts as 16 MiB resident
    env.pop("MALLOC_PERTURB_", None)
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", out] + cmd, env=env, capture_output=True)
    with open(out) as f:
        return proc, int(f.read().split()[-1])


def sanitized():
    """True for an ASan build: its RSS figures say nothing."""
    ldd = subprocess.run(["ldd", sys.argv[1]], capture_output=True)
    return b"libasan" in ldd.stdout


def posts(stats):
    return {k: v for k, v in stats["by_method_status"].items() if k.startswith("POST ")}


def half_compressible(size, seed):
    """Data that deflate halves (random and zero bytes in turn): sealed, it
    stays above multipart-threshold, and its length is not known in advance,
    so it goes through the spool."""
    rnd = random.Random(seed)
    return b"".join(rnd.randbytes(2048) + bytes(2048) for _ in range(size // 4096))


def test_large_file_is_one_put():
    """Files above multipart-threshold (16 MiB) and below single-put-max
    (1 GiB) go up as ONE PUT each, no multipart upload (not one POST): an
    incompressible one sent while it is sealed (its length is known: UNSIGNED-
    PAYLOAD, nothing spooled), a compressible one from an anonymous spool file
    with its payload hash verified by the proxy. Byte-identical on the other
    device, nothing left in the private spool directory, and the sync's peak
    RSS far below the files' size."""
    ws, a, b = s3_pair("singleput")
    write(os.path.join(a.root, "big.bin"), os.urandom(64 << 20))
    write(os.path.join(a.root, "half.bin"), half_compressible(40 << 20, 1))
    write(os.path.join(a.root, "small.txt"), b"small")
    proxy("reset", b"{}")
    proc, rss_kib = run_measured(a, ws)
    stats = proxy("stats")
    check(proc.returncode == 0, "sync exit %d: %s" % (proc.returncode, proc.stderr.decode()))
    check(not posts(stats), "a multipart upload happened: %r" % stats["by_method_status"])
    check(not stats["errors"].get("XAmzContentSHA256Mismatch"), "payload hashes: %r" % stats["errors"])
    check(stats["payload"]["unsigned"] == 1, "payloads %r: big.bin was not streamed" % stats["payload"])
    check(stats["bytes_in"] >= (64 + 20) << 20, "the proxy received %d bytes" % stats["bytes_in"])
    sd = spool_dir(a)
    check(os.path.isdir(sd) and os.listdir(sd) == [], "spool dir %s: %r" % (sd, os.listdir(sd) if os.path.isdir(sd) else None))
    check(os.stat(sd).st_mode & 0o777 == 0o700, "spool dir mode %o" % (os.stat(sd).st_mode & 0o777))
    s = b.sync()
    check(s["files_down"] == 3, "summary %r" % s)
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    print("# 64 + 40 MiB files: %d requests %s, payloads %s; peak RSS of foldersync sync %s"
          % (stats["requests"], json.dumps(stats["by_method_status"], sort_keys=True),
             json.dumps(stats["payload"], sort_keys=True),
             "%.1f MiB" % (rss_kib / 1024) if rss_kib else "not measured (no /usr/bin/time)"))
    if rss_kib is not None and not sanitized():
        # the spooled file's 16 MiB head buffer, the streamed one's few chunks,
        # the engine (and TLS): 54-56 MiB measured here (a debug build, on a
        # loaded 2-core machine), not the files' 104; multipart needed about
        # 80 for one
        check(rss_kib < 64 * 1024, "peak RSS %.1f MiB for 64 + 40 MiB files" % (rss_kib / 1024))
    ws.cleanup()


def test_streamed_put_again_after_failures():
    """Connection resets and SlowDown while a large incompressible file is
    streamed up: a body already read cannot be replayed by the backend, so
    the engine reads and sends the file again (up to 3 times); the sync
    succeeds and the other device gets the exact file."""
    ws, a, b = s3_pair("streamagain")
    write(os.path.join(a.root, "big.bin"), os.urandom(24 << 20))
    proxy("reset", b"{}")
    # seed 3 (the order of requests of one sync is fixed): two GETs are
    # reset and two answered 503, retried by the backend; the first PUT of
    # big.bin is answered 503 once its body was sent: put again by the engine
    proxy("faults", json.dumps({"reset": 0.25, "slowdown": 0.25, "seed": 3}).encode())
    try:
        s = a.sync()
    finally:
        proxy("faults", b"{}")
    stats = proxy("stats")
    by = stats["by_method_status"]
    failed = by.get("PUT reset", 0) + by.get("PUT 503", 0)
    all_failed = sum(v for k, v in by.items() if k.endswith((" reset", " 503")))
    print("# summary %s; proxy %s" % (json.dumps(s, sort_keys=True), json.dumps(stats["by_method_status"], sort_keys=True)))
    check(s["errors"] == 0 and s["files_up"] == 1, "summary %r" % s)
    check(failed >= 1, "no PUT failed: the test did not test anything: %r" % by)
    # the backend retried all but the failure(s) of the streamed PUT
    check(s["storage_retries"] < all_failed, "no put again: %d retries for %d failures"
          % (s["storage_retries"], all_failed))
    s = b.sync()
    check(s["files_down"] == 1, "summary %r" % s)
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    ws.cleanup()


def check_spool_failure(a, b, reason, small):
    """a's sync with big.bin and a new small file, while the spool dir cannot
    take big.bin: a clear error naming the spool dir (no secret), the small
    file synced, big.bin absent remotely."""
    sd = spool_dir(a)
    write(os.path.join(a.root, small), reason.encode())
    proxy("reset", b"{}")
    proc = a.run()
    stats = proxy("stats")
    out = proc.stdout.decode(errors="replace")
    check(proc.returncode == EXIT_PARTIAL, "%s: exit %d: %s %s" % (reason, proc.returncode, out,
                                                                   proc.stderr.decode(errors="replace")))
    summary = json.loads(out)
    err = " ".join(summary["messages"])
    check(summary["errors"] == 1 and summary["files_up"] == 1, "%s: summary %r" % (reason, summary))
    check(sd in err and "big.bin" in err, "%s: the error does not name the spool dir %s: %r" % (reason, sd, err))
    # the access key and the secret are the same word on s3rver
    check(a.store.secret_key not in out + proc.stderr.decode(errors="replace"), "%s: a secret was printed" % reason)
    check(not posts(stats), "%s: multipart requests %r" % (reason, stats["by_method_status"]))
    s = b.sync()
    check(s["files_down"] == 1 and os.path.exists(os.path.join(b.root, small))
          and not os.path.exists(os.path.join(b.root, "big.bin")), "%s: b got %r" % (reason, s))
    print("# %s: exit %d, %s" % (reason, proc.returncode, err))


def test_spool_dir_unusable():
    """The spool dir is a file (read-only for a non-root user), then full (a
    4 MiB tmpfs, when it can be mounted): the big file fails with a clear
    error and nothing reaches the store; once the spool works it goes up."""
    ws, a, b = s3_pair("spoolerr")
    write(os.path.join(a.root, "big.bin"), half_compressible(40 << 20, 2))
    sd = spool_dir(a)
    write(sd, b"a file where the spool directory goes")
    check_spool_failure(a, b, "spool dir is a file", "small-1.txt")
    os.unlink(sd)
    if os.geteuid() != 0:
        os.makedirs(sd, 0o500)
        check_spool_failure(a, b, "read-only spool dir", "small-2.txt")
        os.chmod(sd, 0o700)
    else:
        os.makedirs(sd, 0o700)
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", sd],
                                 capture_output=True).returncode == 0
        if mounted:
            try:
                check_spool_failure(a, b, "full spool disk", "small-2.txt")
                check(os.listdir(sd) == [], "left in the full spool: %r" % os.listdir(sd))
            finally:
                subprocess.run(["umount", sd], check=True)
        else:
            print("# could not mount a tmpfs: the full-disk case is covered by storage-s3-put only")
    s = a.sync()
    check(s["errors"] == 0, "summary %r" % s)
    b.sync()
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    check(os.listdir(sd) == [], "left in the spool: %r" % os.listdir(sd))
    ws.cleanup()


def need_tls():
    if not CA_FILE:
        raise Skip("needs tests/s3/with-s3 --tls (FOLDERSYNC_TEST_S3_CA_FILE)")
    check(os.environ["FOLDERSYNC_TEST_S3_ENDPOINT"].startswith("https://"),
          "FOLDERSYNC_TEST_S3_CA_FILE is set but the endpoint is not https")


def test_tls_two_devices_with_ca_file():
    """Over https with --ca-file: two devices converge (b reaches the proxy
    as https://localhost, the certificate's DNS name; a as 127.0.0.1, its IP
    address), and every request went through a verified TLS connection."""
    need_tls()
    ws, a, b = s3_pair("tls")
    check(a.store.ca_file == CA_FILE, "S3Store did not pick up the CA file")
    b.store = S3Store(a.store.prefix)
    b.store.endpoint = b.store.endpoint.replace("://127.0.0.1:", "://localhost:")
    write(os.path.join(a.root, "notes", "one.txt"), b"one over https\n")
    write(os.path.join(a.root, "big.bin"), os.urandom(12 << 20))  # multipart
    proxy("reset", b"{}")
    t0 = time.monotonic()
    a.sync()
    s = b.sync()
    check(s["files_down"] == 2, "summary %r" % s)
    write(os.path.join(b.root, "from-b.txt"), b"b")
    os.unlink(os.path.join(b.root, "notes", "one.txt"))
    b.sync()
    a.sync()
    took = time.monotonic() - t0
    stats = proxy("stats")
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    check(b"from-b.txt" in sa and b"notes/one.txt" not in sa, "a did not take b's changes: %r" % sorted(sa))
    tls = stats["tls"]
    check(stats["requests"] > 0 and tls["s3_connections"] > 0, "no TLS traffic: %r" % stats)
    check(tls["handshake_failures"] == 0, "handshakes refused: %r" % tls)
    # s3rver's own 404/501 answers (missing objects, unsupported conditional
    # PUT) are normal; anything the proxy itself refused is not
    refused = {k: v for k, v in stats["errors"].items() if not k.startswith("upstream-")}
    check(not refused, "the proxy refused requests: %r" % refused)
    print("# https: 4 syncs in %.2f s, %d requests over %d TLS connection(s)"
          % (took, stats["requests"], tls["s3_connections"]))
    ws.cleanup()


def refused_over_tls(dev, what):
    """Runs dev's sync; it must fail with EXIT_STORE and a one-line TLS error,
    refuse the server in the handshake (not one HTTP request reached the
    proxy), and leave dev's folder and its state untouched."""
    before = snapshot(os.path.dirname(dev.root))  # the folder and its XDG dirs
    proxy("reset", b"{}")
    t0 = time.monotonic()
    proc = dev.run()
    took = time.monotonic() - t0
    stats = proxy("stats")
    err = proc.stderr.decode(errors="replace")
    check(proc.returncode == EXIT_STORE, "%s: exit %d (expected %d): %s"
          % (what, proc.returncode, EXIT_STORE, err))
    check(len(err.strip().splitlines()) == 1, "%s: not one line: %r" % (what, err))
    low = err.lower()
    check("tls" in low or "certificate" in low, "%s: error mentions neither TLS nor certificate: %r"
          % (what, err))
    check(stats["requests"] == 0, "%s: %d request(s) reached the proxy: %r"
          % (what, stats["requests"], stats["by_method_status"]))
    check(stats["tls"]["s3_connections"] == 0 and stats["tls"]["handshake_failures"] >= 1,
          "%s: handshakes %r" % (what, stats["tls"]))
    after = snapshot(os.path.dirname(dev.root))
    # tolerated: new empty directories (the plugin's s3-uploads state dir on
    # a fresh device) and dconf's cache (GIO reading the proxy settings)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    tolerated = [k for k in changed if k.startswith(b"home/cache/dconf")
                 or (k not in before and after[k][0] == "dir")]
    bad = {k: after.get(k) for k in changed if k not in tolerated}
    check(not bad, "%s changed local files:\n%s"
          % (what, diff_snapshots({k: before.get(k) for k in bad if k in before},
                                  {k: v for k, v in bad.items() if v is not None})))
    print("# %s: exit %d in %.2f s after %d refused handshake(s)%s: %s"
          % (what, proc.returncode, took, stats["tls"]["handshake_failures"],
             " (new: %s)" % ", ".join(k.decode() for k in tolerated) if tolerated else "", err.strip()))
    return err


def test_tls_without_ca_file_refused():
    """The same https store without --ca-file (so GIO's system trust, which
    does not know the throwaway CA) or with another CA's file: refused in
    the TLS handshake, exit 5, one line, nothing changed locally; with the
    right CA again, the pending change goes through."""
    need_tls()
    ws, a, b = s3_pair("notls")
    write(os.path.join(a.root, "doc.txt"), b"v1")
    a.sync()
    b.sync()
    # a has a pending edit, b a pending new file: neither may be touched
    write(os.path.join(a.root, "doc.txt"), b"v2, not yet synced")
    write(os.path.join(b.root, "new.txt"), b"new")
    for dev in (a, b):
        dev.store.ca_file = None
        refused_over_tls(dev, "device %s without --ca-file" % dev.name)
    # a fresh device (no state yet) without --ca-file
    c = ws.device("c", S3Store(a.store.prefix), a.key)
    c.store.ca_file = None
    refused_over_tls(c, "a new device without --ca-file")
    # another CA's certificate is no better than none
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "s3"))
    import s3env
    other = ws.path("other-ca")
    os.makedirs(other)
    a.store.ca_file = s3env.make_tls_files(other)[0]
    refused_over_tls(a, "device a with another CA's file")
    for dev in (a, b):
        dev.store.ca_file = CA_FILE
    a.sync()
    b.sync()
    a.sync()
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    check(sa[b"doc.txt"][1] == b"v2, not yet synced" and b"new.txt" in sa, "tree %r" % sa)
    ws.cleanup()


if __name__ == "__main__":
    if not os.environ.get("FOLDERSYNC_TEST_S3_ENDPOINT"):
        print("1..0 # SKIP needs tests/s3/with-s3")
        sys.exit(0)
    sys.exit(run_tests([test_wrong_secret_fails_fast, test_clock_skew_is_explained, test_missing_bucket, test_interop_with_rclone,
                        test_two_devices_basic_on_s3, test_large_file_is_one_put,
                        test_streamed_put_again_after_failures, test_spool_dir_unusable,
                        test_tls_two_devices_with_ca_file,
                        test_tls_without_ca_file_refused]))
