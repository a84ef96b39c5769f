"""Share-token pairing between two daemons, each on its own private bus with
its own XDG dirs, over one store (local, or S3 under with-s3)."""
import glob
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from daemon import DaemonDevice, wait_for  # noqa: E402
from fstest import S3Store, Workspace, check, run_tests  # noqa: E402

EXIT_NOT_FOUND, EXIT_BAD_TOKEN, EXIT_EXPIRED = 11, 14, 15
TOKEN = re.compile(r"Token: ([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})")


def devices(name):
    ws = Workspace(name)
    store = ws.remote()
    a = DaemonDevice(ws, "A", store, ws.keyfile())
    b = DaemonDevice(ws, "B", store, None)
    try:
        a.start()
        b.start()
        a.add_folder("--batch-interval", "200", "--poll-interval", "1")
    except Exception:
        a.stop()
        b.stop()
        raise
    return ws, a, b


def generate(a, ttl=None):
    args = ["generate-token", "--path", a.root] + (["--ttl", str(ttl)] if ttl else [])
    out = a.cli(*args).stdout.decode()
    m = TOKEN.search(out)
    check(m is not None, "no token in %r" % out)
    return m.group(1)


def store_args(dev):
    """Where the other device finds the store; the prefix comes with the token."""
    if isinstance(dev.store, S3Store):
        args = dev.store.args()
        i = args.index("--prefix")
        return args[:i] + args[i + 2:]
    return ["--store", dev.store]


def pair(b, token, check_rc=True):
    return b.cli("pair", "--token", token, "--path", b.root, *store_args(b), check=check_rc)


def envelopes(dev):
    """Objects left in the pairing area of the store."""
    if isinstance(dev.store, S3Store):
        ctl = os.environ["FOLDERSYNC_TEST_S3_CONTROL"]
        return None if ctl is None else [k for k in s3_keys(dev.store) if k.startswith("foldersync-pairing/")]
    return glob.glob(os.path.join(dev.store, "foldersync-pairing", "*"))


def s3_keys(store):
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update({"RCLONE_CONFIG_T_TYPE": "s3", "RCLONE_CONFIG_T_PROVIDER": "Other",
                "RCLONE_CONFIG_T_ENDPOINT": store.endpoint, "RCLONE_CONFIG_T_ACCESS_KEY_ID": store.access_key,
                "RCLONE_CONFIG_T_SECRET_ACCESS_KEY": store.secret_key, "RCLONE_CONFIG_T_REGION": store.region,
                "RCLONE_CONFIG_T_FORCE_PATH_STYLE": "true"})
    out = subprocess.run(["rclone", "--config", "/dev/null", "--fast-list", "lsf", "-R", "--files-only",
                          "T:%s" % store.bucket], env=env, capture_output=True).stdout.decode()
    return out.split()


def proxy_call(control, path, body=None):
    """The S3 test proxy's control endpoint (requests it saw)."""
    import ssl
    ca = os.environ.get("FOLDERSYNC_TEST_S3_CA_FILE")
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    req = urllib.request.Request(control.rstrip("/") + "/" + path, data=body,
                                 method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, context=ctx) as resp:
        return json.loads(resp.read() or b"{}")


def content(dev, rel):
    try:
        return open(os.path.join(dev.root, rel), "rb").read()
    except OSError:
        return None


def test_pair_and_sync_both_ways():
    ws, a, b = devices("pair")
    try:
        with open(os.path.join(a.root, "before.txt"), "wb") as fh:
            fh.write(b"from A before pairing")
        token = generate(a)
        check(envelopes(a), "no envelope on the storage after generate-token")
        t0 = time.monotonic()
        pair(b, token)
        print("# pairing took %.2f s" % (time.monotonic() - t0))
        check(envelopes(a) == [], "the envelope is still on the storage after pairing: %r" % envelopes(a))
        wait_for(lambda: content(b, "before.txt") == b"from A before pairing", 30, "A's file on B")
        with open(os.path.join(a.root, "a.txt"), "wb") as fh:
            fh.write(b"created on A")
        with open(os.path.join(b.root, "b.txt"), "wb") as fh:
            fh.write(b"created on B")
        wait_for(lambda: content(b, "a.txt") == b"created on A", 30, "A's new file on B")
        wait_for(lambda: content(a, "b.txt") == b"created on B", 30, "B's new file on A")
        # second redemption refused
        b2 = DaemonDevice(ws, "C", a.store, None)
        b2.start()
        proc = pair(b2, token, check_rc=False)
        check(proc.returncode == EXIT_NOT_FOUND, "second redemption: %d %s" % (proc.returncode, proc.stderr))
        check(b2.status() is None, "a refused pairing created a folder")
        b2.stop()
        # the token is in no log and no property
        for dev in (a, b):
            check(token not in dev.log() and token.replace("-", "") not in dev.log(), "token in %s's log" % dev.name)
            props = subprocess.run(["gdbus", "call", "--session", "--dest", "org.toolbox.FolderSync",
                                    "--object-path", "/org/toolbox/FolderSync",
                                    "--method", "org.freedesktop.DBus.ObjectManager.GetManagedObjects"],
                                   env=dev.env(), capture_output=True).stdout.decode()
            check(token not in props, "token in %s's properties" % dev.name)
            key = open(a.key).read().strip()
            check(key not in dev.log() and key not in props, "key leaked on %s" % dev.name)
    finally:
        for dev in (a, b):
            dev.stop()
        ws.cleanup()


def test_expired_and_mistyped_tokens():
    ws, a, b = devices("expire")
    try:
        token = generate(a, ttl=1)
        time.sleep(2.2)
        proc = pair(b, token, check_rc=False)
        check(proc.returncode == EXIT_EXPIRED, "expired: %d %s" % (proc.returncode, proc.stderr))
        check(b"expired" in proc.stderr.lower(), "unclear: %r" % proc.stderr)
        check(b.status() is None, "an expired token created a folder")
        check(envelopes(a) == [], "the expired envelope is still there")
        # one wrong character: refused before any request
        token = generate(a)
        wrong = ("X" if token[0] != "X" else "Y") + token[1:]
        before = envelopes(a)
        control = os.environ.get("FOLDERSYNC_TEST_S3_CONTROL")
        if control:
            proxy_call(control, "reset", b"{}")
        proc = pair(b, wrong, check_rc=False)
        if control:
            sent = proxy_call(control, "stats")["requests"]
            check(sent == 0, "a mistyped token made %d storage request(s)" % sent)
        check(proc.returncode == EXIT_BAD_TOKEN, "mistyped: %d %s" % (proc.returncode, proc.stderr))
        check(envelopes(a) == before, "the mistyped token touched the storage")
        check(token not in proc.stderr.decode() and wrong not in proc.stderr.decode(), "token printed")
        # an unredeemed envelope is cleaned up by A after it expires
        token = generate(a, ttl=1)
        wait_for(lambda: len(envelopes(a)) == 1, 25, "only the 5-minute envelope left")
    finally:
        for dev in (a, b):
            dev.stop()
        ws.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([test_pair_and_sync_both_ways, test_expired_and_mistyped_tokens]))
