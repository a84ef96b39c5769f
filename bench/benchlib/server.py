"""The loopback S3 server of the tests (tests/s3/s3env.py), used directly:
the benchmarks talk to s3rver's own port (S3Env.upstream), not to the
SigV4-verifying proxy in front of it, which would be the bottleneck."""
import json
import os
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "tests", "s3"))
import s3env  # noqa: E402

BUCKET = "bench"


class Server:
    def __init__(self):
        self.env = s3env.S3Env(buckets=(BUCKET,))
        self.endpoint = self.env.upstream  # s3rver itself
        self.bucket = BUCKET
        self.region = s3env.REGION
        self.access_key = s3env.ACCESS_KEY
        self.secret_key = s3env.SECRET_KEY
        self.data_dir = os.path.join(self.env.tmp, "data", BUCKET)
        self.pid = self.env.s3rver.pid

    def object_path(self, key):
        """Where s3rver keeps the body of object @key."""
        return os.path.join(self.data_dir, key + "._S3rver_object")

    def count_objects(self, prefix):
        n = 0
        for _, _, files in os.walk(os.path.join(self.data_dir, prefix)):
            n += sum(1 for f in files if f.endswith("._S3rver_object"))
        return n

    def stop(self):
        """Stops s3rver; its data (maybe 500,000 files) is removed in the
        background, so the run does not wait for it."""
        s3env.S3Env._kill(self.env.s3rver)
        trash = tempfile.mkdtemp(prefix="fs-bench-trash-")
        try:
            os.rename(os.path.join(self.env.tmp, "data"), os.path.join(trash, "data"))
        except OSError:
            pass
        self.env.stop()
        remove_in_background(trash)


def remove_in_background(path):
    subprocess.Popen(["rm", "-rf", "--", path], stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def s3rver_version():
    try:
        with open(os.path.join(TOP, ".deps", "s3rver", "node_modules", "s3rver", "package.json")) as f:
            return json.load(f)["version"]
    except (OSError, ValueError, KeyError):
        return "?"
