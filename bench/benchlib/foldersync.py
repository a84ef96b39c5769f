"""FolderSync under test: its release build (build-bench/), one-shot
`foldersync sync` devices, and daemon devices (a private session bus and
their own XDG dirs: tests/integration/daemon.py's DaemonDevice)."""
import json
import os
import subprocess
import sys
import threading
import time

from . import proc

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGETS = ["core/foldersync:executable", "core/foldersyncd:executable", "crypto-aes", "storage-s3",
           "storage-local", "pairing-token", "pipeline-bench", "object-cat"]


def build(builddir, log):
    """Sets up (release) and builds what the benchmark runs; returns the binaries."""
    if not os.path.exists(os.path.join(builddir, "build.ninja")):
        log("meson setup %s -Dbuildtype=release" % builddir)
        subprocess.run(["meson", "setup", builddir, "-Dbuildtype=release"], cwd=TOP, check=True,
                       stdout=subprocess.DEVNULL)
    r = subprocess.run(["meson", "compile", "-C", builddir] + TARGETS, cwd=TOP,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise proc.RunError("meson compile -C %s failed:\n%s" % (builddir, r.stdout[-3000:]))
    return {
        "foldersync": os.path.join(builddir, "core", "foldersync"),
        "foldersyncd": os.path.join(builddir, "core", "foldersyncd"),
        "pipeline-bench": os.path.join(builddir, "bench", "pipeline-bench"),
        "object-cat": os.path.join(builddir, "bench", "object-cat"),
    }


def source_state():
    """The commit that was built, and whether core/ or plugins/ had
    uncommitted changes then (read-only git commands)."""
    def git(*args):
        r = subprocess.run(["git", "-C", TOP] + list(args), capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--", "core", "plugins")
    return "commit %s%s" % (commit, " + uncommitted changes in core/ or plugins/" if dirty else "")


def devenv(builddir):
    """The variables `meson devenv -C builddir` sets (FOLDERSYNC_PLUGIN_DIR, ...)."""
    out = subprocess.run(["meson", "devenv", "-C", builddir, "--dump"], capture_output=True,
                         text=True, check=True).stdout
    env = {}
    for line in out.splitlines():
        if "=" in line and not line.startswith("export "):
            name, value = line.split("=", 1)
            env[name] = os.path.expandvars(value.strip('"')).rstrip(":")
    return env


def version(binaries):
    r = subprocess.run([binaries["foldersync"], "--version"], capture_output=True, text=True)
    return (r.stdout.strip() or r.stderr.strip() or "?").splitlines()[0] if r.returncode == 0 else "?"


def write_key(binaries, path):
    out = subprocess.run([binaries["foldersync"], "keygen"], check=True, capture_output=True).stdout
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, out)
    os.close(fd)
    return path


class CliDevice:
    """A device that runs one-shot `foldersync sync` against the S3 server."""

    def __init__(self, binaries, home, server, key, prefix, name):
        self.bin = binaries["foldersync"]
        self.home = home
        self.server = server
        self.key = key
        self.prefix = prefix
        self.name = name
        os.makedirs(home, exist_ok=True)

    def env(self):
        env = dict(os.environ)
        env.update({
            "XDG_DATA_HOME": os.path.join(self.home, "data"),
            "XDG_CONFIG_HOME": os.path.join(self.home, "config"),
            "XDG_CACHE_HOME": os.path.join(self.home, "cache"),
            "HOME": self.home,
            "FOLDERSYNC_DEVICE_NAME": self.name,
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
        })
        return env

    def sync(self, folder):
        """One sync of @folder; -> (proc.Result, summary dict). Fails unless it
        exits 0 with no file errors."""
        os.makedirs(folder, exist_ok=True)
        r = proc.run([self.bin, "sync", "--json", "--path", folder, "--key-file", self.key,
                      "--endpoint", self.server.endpoint, "--bucket", self.server.bucket,
                      "--region", self.server.region, "--prefix", self.prefix], env=self.env())
        r.check("foldersync sync (%s, %s)" % (self.name, self.prefix))
        summary = json.loads(r.stdout)
        if summary.get("errors"):
            raise proc.RunError("foldersync sync reported errors: %s" % summary.get("messages"))
        return r, summary


def import_daemon_helpers(foldersync_bin, foldersyncd_bin):
    """tests/integration/daemon.py (and fstest.py, which takes the binary from
    argv[1] when imported)."""
    sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
    os.environ["FOLDERSYNC_DAEMON"] = foldersyncd_bin
    saved = sys.argv
    sys.argv = [saved[0], foldersync_bin]
    try:
        import daemon  # noqa: F401
        import fstest  # noqa: F401
    finally:
        sys.argv = saved
    return daemon, fstest


class Workspace:
    """What DaemonDevice needs of fstest.Workspace, in our own work dir."""

    def __init__(self, root):
        self.dir = root

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


class Daemon:
    """A foldersyncd device syncing one folder with the S3 server: a private
    bus, its own XDG dirs, the daemon started by us (so we can wait4 it)."""

    def __init__(self, binaries, work, name, server, key, prefix, settings):
        self.daemon_mod, self.fstest = import_daemon_helpers(binaries["foldersync"],
                                                             binaries["foldersyncd"])
        os.environ.update({
            "FOLDERSYNC_TEST_S3_ENDPOINT": server.endpoint,
            "FOLDERSYNC_TEST_S3_BUCKET": server.bucket,
            "FOLDERSYNC_TEST_S3_REGION": server.region,
            "FOLDERSYNC_TEST_S3_ACCESS_KEY": server.access_key,
            "FOLDERSYNC_TEST_S3_SECRET_KEY": server.secret_key,
        })
        os.environ.pop("FOLDERSYNC_TEST_S3_CA_FILE", None)
        store = self.fstest.S3Store(prefix)
        self.dev = self.daemon_mod.DaemonDevice(Workspace(work), name, store, key)
        self.root = self.dev.root
        self.settings = settings  # extra `foldersync start` options
        self.rusage = None

    @property
    def pid(self):
        return self.dev.daemon.pid

    def start(self):
        """Starts the bus (once) and the daemon; -> seconds until it answered."""
        if self.dev.bus is None:
            self.dev.start_bus()
        t0 = time.monotonic()
        self.dev.start_daemon()
        return time.monotonic() - t0

    def add_folder(self):
        self.dev.add_folder(*self.settings)

    def status(self):
        return self.dev.status()

    def wait_idle(self, min_syncs, timeout, poll=0.02):
        """Waits until the folder is idle after at least @min_syncs syncs of
        this daemon process; -> the status."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st and st["state"] == "idle" and st["sync_count"] >= min_syncs:
                return st
            if st and st["state"] == "error":
                raise proc.RunError("the folder is in error: %s" % st.get("last_error"))
            if self.dev.daemon.poll() is not None:
                raise proc.RunError("foldersyncd exited: %s" % self.dev.log())
            if time.monotonic() > deadline:
                raise proc.RunError("the folder did not become idle in %d s: %s\n%s"
                                    % (timeout, st, self.dev.log()))
            time.sleep(poll)

    def stop_daemon(self):
        """SIGTERM, then wait4: -> rusage of the daemon's whole life."""
        d = self.dev.daemon
        if d is None or d.returncode is not None:
            return None
        d.terminate()
        timer = threading.Timer(60, d.kill)
        timer.start()
        try:
            _, self.rusage = proc.reap(d)
        finally:
            timer.cancel()
        return self.rusage

    def stop(self):
        self.stop_daemon()
        self.dev.stop()
