"""Shared helpers for the integration tests: devices with their own XDG
dirs, running the real foldersync binary, comparing trees."""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

FOLDERSYNC = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("FOLDERSYNC_BIN", "foldersync")
TRASH = ".foldersync.trash"


class Failure(Exception):
    pass


class Skip(Exception):
    """A check that cannot run here: reported as a TAP skip, never as a pass."""


def check(cond, message):
    if not cond:
        raise Failure(message)


class Workspace:
    """A temporary directory holding stores, devices and key files."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix="fs-%s-" % name)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def keyfile(self, name="key"):
        path = self.path(name + ".key")
        out = subprocess.run([FOLDERSYNC, "keygen"], check=True, capture_output=True).stdout
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, out)
        os.close(fd)
        return path

    def store(self, name="store"):
        path = self.path(name)
        os.makedirs(path, exist_ok=True)
        return path

    def remote(self, name="store"):
        """An S3 bucket prefix under tests/s3/with-s3 (FOLDERSYNC_TEST_S3_*
        set), else a local store directory."""
        if os.environ.get("FOLDERSYNC_TEST_S3_ENDPOINT"):
            return S3Store(os.path.basename(self.dir) + "/" + name)
        return self.store(name)

    def device(self, name, store, key):
        return Device(self, name, store, key)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class S3Store:
    """A prefix in the test bucket of the loopback S3 server. ca_file (passed
    as --ca-file) defaults to FOLDERSYNC_TEST_S3_CA_FILE, which with-s3 --tls
    sets; set it to None to leave --ca-file out."""

    def __init__(self, prefix, ca_file=None):
        self.prefix = prefix
        self.ca_file = ca_file or os.environ.get("FOLDERSYNC_TEST_S3_CA_FILE") or None
        self.endpoint = os.environ["FOLDERSYNC_TEST_S3_ENDPOINT"]
        self.bucket = os.environ["FOLDERSYNC_TEST_S3_BUCKET"]
        self.region = os.environ.get("FOLDERSYNC_TEST_S3_REGION", "us-east-1")
        self.access_key = os.environ["FOLDERSYNC_TEST_S3_ACCESS_KEY"]
        self.secret_key = os.environ["FOLDERSYNC_TEST_S3_SECRET_KEY"]

    def args(self):
        return (["--endpoint", self.endpoint, "--bucket", self.bucket, "--region", self.region,
                 "--prefix", self.prefix] + (["--ca-file", self.ca_file] if self.ca_file else []))

    def env(self):
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


class Device:
    """One "device": a folder plus its own XDG data/config dirs."""

    def __init__(self, ws, name, store, key):
        self.name = name
        self.root = ws.path(name, "folder")
        self.home = ws.path(name, "home")
        self.store = store
        self.key = key
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.home, exist_ok=True)

    def env(self):
        env = dict(os.environ)
        env["XDG_DATA_HOME"] = os.path.join(self.home, "data")
        env["XDG_CONFIG_HOME"] = os.path.join(self.home, "config")
        env["XDG_CACHE_HOME"] = os.path.join(self.home, "cache")
        env["HOME"] = self.home
        env["FOLDERSYNC_DEVICE_NAME"] = self.name
        if isinstance(self.store, S3Store):
            env.update(self.store.env())
        return env

    def run(self, *args, key=None, store=None, path=None):
        cmd = [FOLDERSYNC, "sync", "--json", "--path", path or self.root,
               "--key-file", key or self.key]
        target = store or self.store
        if isinstance(target, S3Store):
            cmd += target.args()
        elif target is not None:
            cmd += ["--store", target]
        cmd += list(args)
        return subprocess.run(cmd, env=self.env(), capture_output=True)

    def sync(self, *args, expect_rc=0):
        proc = self.run(*args)
        try:
            summary = json.loads(proc.stdout.decode()) if proc.stdout else None
        except ValueError:
            summary = None
        if proc.returncode != expect_rc:
            raise Failure("sync of %s exited %d (expected %d)\nstdout: %s\nstderr: %s"
                          % (self.name, proc.returncode, expect_rc,
                             proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")))
        return summary


def snapshot(root):
    """{relative path bytes: (kind, content or target, exec bit)} without the trash.
    A file that goes away while the tree is walked is left out."""
    result = {}
    root_b = os.fsencode(root)
    for dirpath, dirnames, filenames in os.walk(root_b):
        rel_dir = os.path.relpath(dirpath, root_b)
        if rel_dir == b".":
            rel_dir = b""
        if rel_dir == b"" and os.fsencode(TRASH) in dirnames:
            dirnames.remove(os.fsencode(TRASH))
        for d in list(dirnames):
            full = os.path.join(dirpath, d)
            rel = os.path.join(rel_dir, d) if rel_dir else d
            if os.path.islink(full):
                result[rel] = ("link", os.readlink(full), False)
                dirnames.remove(d)
            else:
                result[rel] = ("dir", None, False)
        for f in filenames:
            full = os.path.join(dirpath, f)
            rel = os.path.join(rel_dir, f) if rel_dir else f
            try:
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    result[rel] = ("link", os.readlink(full), False)
                else:
                    with open(full, "rb") as fh:
                        result[rel] = ("file", fh.read(), bool(st.st_mode & 0o100))
            except FileNotFoundError:
                # gone since the directory was listed (a running daemon's
                # temporary file renamed into place): not part of the tree
                pass
    return result


def diff_snapshots(a, b):
    lines = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            def show(v):
                if v is None:
                    return "absent"
                kind, content, x = v
                if kind == "file":
                    return "file %d bytes%s %r" % (len(content), " +x" if x else "", content[:40])
                return "%s %r" % (kind, content)
            lines.append("  %r: %s | %s" % (k, show(a.get(k)), show(b.get(k))))
    return "\n".join(lines)


def run_tests(tests):
    failed = 0
    print("1..%d" % len(tests))
    for i, test in enumerate(tests, 1):
        name = test.__name__
        try:
            test()
            print("ok %d %s" % (i, name))
        except Skip as e:
            print("ok %d %s # SKIP %s" % (i, name, e))
        except Exception as e:  # report every failure, go on with the rest
            failed += 1
            print("not ok %d %s" % (i, name))
            for line in ("%s: %s" % (type(e).__name__, e)).splitlines():
                print("# " + line)
        sys.stdout.flush()
    return 1 if failed else 0
