"""rclone (Debian's package), the reference: an s3 remote plus a crypt remote
over it, configured from bench/rclone.conf.in, --transfers = max_workers."""
import os
import subprocess

from . import proc

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(HERE, "rclone.conf.in")
PASSWORD = "foldersync-bench"  # a benchmark secret, not a secret


def version():
    r = subprocess.run(["rclone", "version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0].strip() if r.returncode == 0 and r.stdout else "?"


def _env():
    # This machine exports AWS_CA_BUNDLE; rclone 1.60 then fails every request
    # (LoadCustomCABundleError) even over http (../shared/S3-TEST-SERVER.md).
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env["RCLONE_CONFIG"] = "/dev/null"  # never the user's own
    return env


class Rclone:
    def __init__(self, work, server, transfers):
        self.conf = os.path.join(work, "rclone.conf")
        self.transfers = transfers
        obscured = subprocess.run(["rclone", "obscure", PASSWORD], capture_output=True, text=True,
                                  env=_env(), check=True).stdout.strip()
        with open(TEMPLATE) as f:
            text = f.read()
        text = (text.replace("@ENDPOINT@", server.endpoint).replace("@BUCKET@", server.bucket)
                .replace("@PASSWORD@", obscured))
        fd = os.open(self.conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)

    def run(self, *args):
        cmd = ["rclone", "--config", self.conf, "--transfers", str(self.transfers)] + list(args)
        return proc.run(cmd, env=_env()).check("rclone " + " ".join(args[:3]))

    def sync(self, src, dst, expect_copied=None):
        """`rclone sync SRC DST` (a local dir and enc:PATH, either way); with
        @expect_copied, checks how many files it transferred (-v logs each)."""
        if expect_copied is None:
            return self.run("sync", src, dst)
        r = self.run("sync", "-v", src, dst)
        copied = sum(1 for line in r.stderr.splitlines() if ": Copied (" in line)
        if copied != expect_copied:
            raise proc.RunError("rclone sync %s %s copied %d files, not %d:\n%s"
                                % (src, dst, copied, expect_copied, r.stderr[-2000:]))
        return r

    def cat(self, remote_path):
        r = subprocess.run(["rclone", "--config", self.conf, "cat", remote_path],
                           capture_output=True, env=_env())
        if r.returncode != 0:
            raise proc.RunError("rclone cat %s: %s" % (remote_path, r.stderr.decode(errors="replace")))
        return r.stdout
