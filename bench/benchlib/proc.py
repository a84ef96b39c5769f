"""Runs a command and measures it: wall time, and the rusage that wait4
returns for it (user and system CPU seconds, peak RSS)."""
import os
import subprocess
import tempfile
import threading
import time


class RunError(Exception):
    pass


class Result:
    def __init__(self, cmd, rc, wall, ru, out, err):
        self.cmd = cmd
        self.rc = rc
        self.wall = wall
        self.cpu = ru.ru_utime + ru.ru_stime
        self.maxrss_mib = ru.ru_maxrss / 1024.0  # Linux: KiB
        self.stdout = out
        self.stderr = err

    def check(self, what=None):
        if self.rc != 0:
            raise RunError("%s exited %d\n%s%s" % (what or " ".join(self.cmd[:3]), self.rc,
                                                  self.stdout[-1500:], self.stderr[-3000:]))
        return self


def reap(proc):
    """Waits for a Popen child with wait4: -> (exit code, rusage)."""
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, ru


def run(cmd, env=None, cwd=None, timeout=1200):
    """Runs @cmd to completion; stdout and stderr are kept (as text). The
    dirty pages of earlier steps are written back first (sync), so that
    their writeback does not slow this one (s3rver writes every object
    to disk; a download writes the file)."""
    os.sync()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            rc, ru = reap(proc)
        finally:
            timer.cancel()
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return Result(cmd, rc, wall, ru, out.read().decode(errors="replace"),
                      err.read().decode(errors="replace"))


def vm_hwm_mib(pid):
    """Peak RSS so far of a live process (VmHWM), in MiB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def cpu_seconds(pid):
    """User + system CPU seconds so far of a live process (its threads included)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None
