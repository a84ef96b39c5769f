"""storage-s3 end to end, under tests/s3/with-s3 (s3rver behind the SigV4-
verifying proxy): errors, secrets, and interoperability with rclone."""
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from fstest import S3Store, Workspace, check, diff_snapshots, run_tests, snapshot  # noqa: E402

EXIT_STORE = 5
CONTROL = os.environ.get("FOLDERSYNC_TEST_S3_CONTROL", "")


def proxy(path, body=None):
    """The proxy's control endpoint: "stats" or "reset"."""
    req = urllib.request.Request(CONTROL.rstrip("/") + "/" + path, data=body,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req) as resp:
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
    proc = subprocess.run(["rclone", "--config", "/dev/null", "--fast-list"] + list(args), env=env,
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
    write(os.path.join(a.root, "big.bin"), os.urandom(40 << 20))  # multipart
    a.sync()
    s = b.sync()
    check(s["files_down"] == 2, "summary %r" % s)
    os.unlink(os.path.join(b.root, "notes", "one.txt"))
    b.sync()
    a.sync()
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    ws.cleanup()


if __name__ == "__main__":
    if not os.environ.get("FOLDERSYNC_TEST_S3_ENDPOINT"):
        print("1..0 # SKIP needs tests/s3/with-s3")
        sys.exit(0)
    sys.exit(run_tests([test_wrong_secret_fails_fast, test_missing_bucket, test_interop_with_rclone,
                        test_two_devices_basic_on_s3]))
