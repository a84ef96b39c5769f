"""Helpers for daemon tests: a "device" is a private session bus, its own
XDG dirs and a real foldersyncd process; it is driven with the foldersync
CLI (a D-Bus client), exactly as a user would."""
import json
import os
import signal
import subprocess
import sys
import time

from fstest import FOLDERSYNC, Failure, S3Store

FOLDERSYNCD = os.environ.get("FOLDERSYNC_DAEMON") or os.path.join(os.path.dirname(FOLDERSYNC),
                                                                   "foldersyncd")


def _die_with_test():
    """A daemon or bus the test started must not outlive it (and hold meson's
    pipes open) if the test dies without cleaning up."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class DaemonDevice:
    def __init__(self, ws, name, store, key, extra_env=None, wrapper=None):
        self.ws = ws
        self.name = name
        self.store = store
        self.key = key
        self.root = ws.path(name, "folder")
        self.home = ws.path(name, "home")
        self.extra_env = extra_env or {}
        self.wrapper = wrapper or []  # e.g. a user namespace with its own inotify limit
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.home, exist_ok=True)
        self.bus = None
        self.bus_address = None
        self.daemon = None

    def env(self):
        env = dict(os.environ)
        env.update({
            "XDG_DATA_HOME": os.path.join(self.home, "data"),
            "XDG_CONFIG_HOME": os.path.join(self.home, "config"),
            "XDG_CACHE_HOME": os.path.join(self.home, "cache"),
            "XDG_RUNTIME_DIR": os.path.join(self.home, "runtime"),
            "HOME": self.home,
            "FOLDERSYNC_DEVICE_NAME": self.name,
        })
        os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
        if self.bus_address:
            env["DBUS_SESSION_BUS_ADDRESS"] = self.bus_address
        if isinstance(self.store, S3Store):
            env.update(self.store.env())
        env.update(self.extra_env)
        return env

    def start_bus(self, service_dir=None):
        """A private session bus; with @service_dir, it activates the services there."""
        config = os.path.join(self.home, "bus.conf")
        services = "<servicedir>%s</servicedir>" % service_dir if service_dir else ""
        with open(config, "w") as fh:
            fh.write("""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:tmpdir=%s</listen>%s
<policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/>
<allow own="*"/></policy></busconfig>""" % (self.home, services))
        # Activated services inherit the bus's environment: the device's XDG dirs.
        self.bus = subprocess.Popen(["dbus-daemon", "--config-file", config, "--nofork",
                                     "--print-address=1"], stdout=subprocess.PIPE, env=self.env(),
                                    stderr=subprocess.DEVNULL, preexec_fn=_die_with_test)
        self.bus_address = self.bus.stdout.readline().decode().strip()
        if not self.bus_address:
            raise Failure("dbus-daemon did not start")

    def start_daemon(self):
        log = open(os.path.join(self.home, "daemon.log"), "ab")
        self.daemon = subprocess.Popen(self.wrapper + [FOLDERSYNCD], env=self.env(), stdout=log, stderr=log,
                                       stdin=subprocess.DEVNULL, preexec_fn=_die_with_test)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("status", "--json", check=False).returncode == 0:
                return
            if self.daemon.poll() is not None:
                raise Failure("foldersyncd exited with %s: %s" % (self.daemon.returncode, self.log()))
            time.sleep(0.05)
        raise Failure("foldersyncd did not come up: %s" % self.log())

    def start(self):
        self.start_bus()
        self.start_daemon()

    def log(self):
        try:
            return open(os.path.join(self.home, "daemon.log"), "rb").read().decode(errors="replace")[-3000:]
        except OSError:
            return ""

    def cli(self, *args, check=True):
        proc = subprocess.run([FOLDERSYNC] + list(args), env=self.env(), capture_output=True, timeout=120)
        if check and proc.returncode != 0:
            raise Failure("foldersync %s exited %d: %s\n%s" % (" ".join(args), proc.returncode,
                                                              proc.stderr.decode(errors="replace"),
                                                              self.log()))
        return proc

    def add_folder(self, *args):
        store_args = self.store.args() if isinstance(self.store, S3Store) else ["--store", self.store]
        return self.cli("start", "--path", self.root, "--key-file", self.key, *(store_args + list(args)))

    def status(self):
        folders = json.loads(self.cli("status", "--json").stdout)["folders"]
        return folders[0] if folders else None

    def kill_daemon(self, sig=signal.SIGTERM):
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            try:
                return self.daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                return self.daemon.wait()
        return None

    def stop(self):
        self.kill_daemon()
        if self.bus is not None:
            self.bus.terminate()
            self.bus.wait()
            self.bus = None


def wait_for(predicate, timeout, what):
    """Polls @predicate until true; returns the seconds it took."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise Failure("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.02)
