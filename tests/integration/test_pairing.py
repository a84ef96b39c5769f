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


def devices(name, wrapper=None):
    ws = Workspace(name)
    store = ws.remote()
    a = DaemonDevice(ws, "A", store, ws.keyfile(), wrapper=wrapper)
    b = DaemonDevice(ws, "B", store, None, wrapper=wrapper)
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
        a.cli("stop", "--path", a.root)  # A's polls would count at the proxy too
        proxy_reset()
        proc = pair(b, wrong, check_rc=False)
        stats = proxy_stats()
        if stats is not None:
            check(stats["requests"] == 0, "a mistyped token made %d storage request(s)" % stats["requests"])
        a.cli("start", "--path", a.root)
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


LONG = re.compile(r"--token (FS1\.[A-Z2-7]+)")


def generate_long(a, *extra):
    """generate-token with the long form and its QR code: (token, long form, output)."""
    out = a.cli("generate-token", "--path", a.root, "--qr", "always", *extra).stdout.decode()
    m, long_m = TOKEN.search(out), LONG.search(out)
    check(m is not None and long_m is not None, "no token or no long form in %r" % out)
    return m.group(1), long_m.group(1), out


def qr_text(out):
    """Reads the terminal QR code in @out back (half blocks, 2 modules per cell),
    renders it as a PNG and decodes it with zbarimg (an independent reader)."""
    import struct
    import zlib
    lines = [ln for ln in out.splitlines() if "\033[30;47m" in ln]
    check(lines, "no QR code in the output")
    rows = []
    for ln in lines:
        cells = ln.split("\033[30;47m", 1)[1].split("\033[0m", 1)[0]
        rows.append([c in "█▀" for c in cells])
        rows.append([c in "█▄" for c in cells])
    scale, quiet = 6, 4
    width = len(rows[0])
    px_w, px_h = (width + 2 * quiet) * scale, (len(rows) + 2 * quiet) * scale
    raw = bytearray()
    for y in range(px_h):
        raw.append(0)
        my = y // scale - quiet
        for x in range(px_w):
            mx = x // scale - quiet
            dark = 0 <= my < len(rows) and 0 <= mx < width and rows[my][mx]
            raw.append(0 if dark else 255)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", px_w, px_h, 8, 0, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))
    proc = subprocess.run(["zbarimg", "--quiet", "--raw", "-"], input=png, capture_output=True)
    check(proc.returncode == 0, "zbarimg could not read the QR code: %r" % proc.stderr)
    return proc.stdout.decode().strip()


# The daemons log everything (the CLI not: GLib prints debug output on stdout).
DEBUG = ["env", "G_MESSAGES_DEBUG=all"]


def full_log(dev):
    return open(os.path.join(dev.home, "daemon.log"), "rb").read().decode(errors="replace")


def bare_device(ws, name, started):
    """A device with no storage configured and no S3 credentials in its environment."""
    dev = DaemonDevice(ws, name, None, None, wrapper=DEBUG)
    started.append(dev)
    dev.start()
    return dev


def proxy_stats():
    """The S3 proxy's counters; None on a local store (no requests to count)."""
    control = os.environ.get("FOLDERSYNC_TEST_S3_CONTROL")
    if not control:
        print("# local store: storage requests are not counted")
        return None
    return proxy_call(control, "stats")


def proxy_reset():
    control = os.environ.get("FOLDERSYNC_TEST_S3_CONTROL")
    if control:
        proxy_call(control, "reset", b"{}")


def pair_long(dev, long_token, *extra, check_rc=True):
    ca = os.environ.get("FOLDERSYNC_TEST_S3_CA_FILE")
    return dev.cli("pair", "--token", long_token, "--path", dev.root, *extra,
                   *(["--ca-file", ca] if ca else []), check=check_rc)


def test_long_form():
    ws, a, b = devices("long", DEBUG)
    started = [a, b]
    try:
        if not isinstance(a.store, S3Store):
            # A local store cannot presign URLs: no long form, and no QR code.
            out = a.cli("generate-token", "--path", a.root, "--qr", "always").stdout.decode()
            check(TOKEN.search(out) and "FS1." not in out and "\033[" not in out,
                  "a local store printed a long form: %r" % out)
            proc = a.cli("generate-token", "--path", a.root, "--include-credentials", check=False)
            check(proc.returncode != 0 and b"S3" in proc.stderr,
                  "--include-credentials on a local store: %d %r" % (proc.returncode, proc.stderr))
            return
        b.stop()
        with open(os.path.join(a.root, "before.txt"), "wb") as fh:
            fh.write(b"from A, long form")

        # With A's credentials in the envelope: B needs nothing but the line.
        # (Earlier tests may have left unexpired envelopes in the shared bucket.)
        before = set(envelopes(a))
        token, long_token, out = generate_long(a, "--include-credentials")
        ours = set(envelopes(a)) - before
        check(len(ours) == 1, "generate-token put %d envelopes" % len(ours))
        check(qr_text(out) == long_token, "the QR code does not read back as the long form")
        print("# long form: %d characters" % len(long_token))
        b = bare_device(ws, "B", started)
        proxy_reset()
        pair_long(b, long_token)
        stats = proxy_stats()
        if stats is not None:
            check(stats["auth"]["presigned"] >= 2, "B did not use the presigned URLs: %r" % stats["auth"])
        check(not ours & set(envelopes(a)), "the envelope is still there after pairing")
        wait_for(lambda: content(b, "before.txt") == b"from A, long form", 30, "A's file on B")
        with open(os.path.join(b.root, "b.txt"), "wb") as fh:
            fh.write(b"created on B")
        wait_for(lambda: content(a, "b.txt") == b"created on B", 30, "B's new file on A")
        for dev in (a, b):
            log = full_log(dev)
            check("DEBUG" in log, "%s's daemon did not log at debug level" % dev.name)
            check(long_token not in log and token not in log, "a token is in %s's log" % dev.name)
            check("X-Amz-Signature" not in log, "a presigned URL is in %s's log" % dev.name)
        check(pair_long(bare_device(ws, "B2", started), long_token, check_rc=False).returncode == EXIT_NOT_FOUND,
              "a used long form was accepted again")

        # Without credentials: a device without its own is told so before the
        # envelope is used up; with its own it pairs.
        token, long_token, out = generate_long(a)
        c = bare_device(ws, "C", started)
        proc = pair_long(c, long_token, check_rc=False)
        check(proc.returncode == 2 and b"credentials" in proc.stderr,
              "no credentials: %d %r" % (proc.returncode, proc.stderr))
        check(len(set(envelopes(a)) - before) == 1, "the envelope was used up by a refused pairing")
        # The daemon checks too (a D-Bus client that is not the CLI): an access
        # key without its secret is refused before the token is used.
        proc = subprocess.run(["gdbus", "call", "--session", "--dest", "org.toolbox.FolderSync",
                               "--object-path", "/org/toolbox/FolderSync",
                               "--method", "org.toolbox.FolderSync.Manager.Pair", long_token, c.root,
                               "{'access-key': <'%s'>}" % a.store.access_key],
                              env=c.env(), capture_output=True)
        check(proc.returncode != 0 and b"credentials" in proc.stderr,
              "Pair without a secret: %d %r" % (proc.returncode, proc.stderr))
        check(len(set(envelopes(a)) - before) == 1, "the envelope was used up by a refused D-Bus Pair")
        proc = pair_long(c, long_token, "--endpoint", a.store.endpoint, "--bucket", a.store.bucket,
                         check_rc=False)
        check(proc.returncode == 2, "a long form with --endpoint: %d %r" % (proc.returncode, proc.stderr))
        secret = ws.path("C", "secret")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as fh:
            fh.write(a.store.secret_key + "\n")
        pair_long(c, long_token, "--access-key", a.store.access_key, "--secret-key-file", secret)
        wait_for(lambda: content(c, "b.txt") == b"created on B", 30, "the folder on C")

        # Expired by B's own clock, damaged: refused before any request.
        _, long_token, _ = generate_long(a, "--ttl", "1", "--include-credentials")
        time.sleep(2.2)
        d = bare_device(ws, "D", started)
        # Only D may talk to the store now: the others' polls would count too.
        a.cli("stop", "--path", a.root)
        b.stop()
        c.stop()
        proxy_reset()
        proc = pair_long(d, long_token, check_rc=False)
        check(proc.returncode == EXIT_EXPIRED, "expired long form: %d %r" % (proc.returncode, proc.stderr))
        mid = len(long_token) // 2
        damaged = long_token[:mid] + ("A" if long_token[mid] != "A" else "B") + long_token[mid + 1:]
        proc = pair_long(d, damaged, check_rc=False)
        check(proc.returncode == EXIT_BAD_TOKEN, "damaged long form: %d %r" % (proc.returncode, proc.stderr))
        check(damaged.encode() not in proc.stderr, "the long form was printed back")
        stats = proxy_stats()
        if stats is not None:
            check(stats["requests"] == 0, "refused long forms made %d request(s)" % stats["requests"])
        check(d.status() is None, "a refused long form created a folder")
    finally:
        for dev in started:
            dev.stop()
        ws.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([test_pair_and_sync_both_ways, test_expired_and_mistyped_tokens, test_long_form]))
