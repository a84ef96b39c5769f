"""Starts a real S3 server for the tests: a fresh s3rver on 127.0.0.1 behind
the SigV4-verifying proxy (sigv4_proxy.py). Standard library only.

    from s3env import S3Env
    env = S3Env()            # starts both, creates the bucket
    env.endpoint             # the PROXY's URL: every S3 test goes through it
    env.stats()              # the proxy's counters (dict)
    env.set_faults(reset=0.03, slowdown=0.03, truncate=0.02, delay=0.1, delay_ms=300, seed=1)
    env.stop()               # also done at interpreter exit and on SIGTERM/SIGINT/SIGHUP

    env = S3Env(tls=True)    # the proxy speaks https only, with a certificate for
    env.ca_file              # 127.0.0.1 and localhost from a throwaway CA (this PEM)

s3rver is installed into .deps/s3rver by tests/s3/install-s3rver (run here
when it is missing). The proxy imports botocore, so it runs under Debian's
/usr/bin/python3 (override with FOLDERSYNC_TEST_S3_PYTHON).
"""
import atexit
import ctypes
import datetime
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
S3RVER = os.path.join(TOP, ".deps", "s3rver", "node_modules", ".bin", "s3rver")
INSTALL = os.path.join(HERE, "install-s3rver")
PROXY = os.path.join(HERE, "sigv4_proxy.py")
BOTO_PYTHON = os.environ.get("FOLDERSYNC_TEST_S3_PYTHON", "/usr/bin/python3")

ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"
DEFAULT_BUCKET = "foldersync-test"

_live = set()


class S3EnvError(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent():
    """Runs in the child: SIGTERM it if the process that started it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def sign_v4(method, url, headers, payload_hash="UNSIGNED-PAYLOAD",
            access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=REGION, now=None):
    """A small SigV4 header signer (stdlib) for this module's own set-up
    requests; the tests use independent clients (curl, botocore, rclone).
    url must be already percent-encoded. Returns the headers to send."""
    from urllib.parse import urlsplit
    u = urlsplit(url)
    t = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = t.strftime("%Y%m%dT%H%M%SZ")
    h = {k.lower(): v for k, v in headers.items()}
    h["host"] = u.netloc
    h["x-amz-date"] = amz_date
    h["x-amz-content-sha256"] = payload_hash
    names = sorted(h)
    query = "&".join(sorted(p if "=" in p else p + "=" for p in u.query.split("&") if p))
    creq = "\n".join([method, u.path or "/", query,
                      "".join("%s:%s\n" % (n, " ".join(str(h[n]).split())) for n in names),
                      ";".join(names), payload_hash])
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], region)
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access_key, scope, ";".join(names), sig)
    del h["host"]
    return h


def make_tls_files(directory):
    """A throwaway CA and a server certificate signed by it for 127.0.0.1 (IP
    SAN) and localhost, with the openssl command line (P-256 keys: instant).
    -> (ca.pem, server.pem, server.key) under directory."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise S3EnvError("--tls needs the openssl command (Debian package openssl)")
    ca_key, ca_pem = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.pem")
    key, csr = os.path.join(directory, "server.key"), os.path.join(directory, "server.csr")
    pem, ext = os.path.join(directory, "server.pem"), os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints = critical, CA:FALSE\n"
                "keyUsage = critical, digitalSignature, keyEncipherment\n"
                "extendedKeyUsage = serverAuth\n"
                "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
                "subjectKeyIdentifier = hash\n"
                "authorityKeyIdentifier = keyid\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    steps = [
        [openssl, "req", "-x509"] + ec + ["-keyout", ca_key, "-out", ca_pem, "-days", "2",
         "-subj", "/O=FolderSync tests/CN=FolderSync throwaway test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        [openssl, "req"] + ec + ["-keyout", key, "-out", csr, "-subj", "/O=FolderSync tests/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
         "-set_serial", "0x" + os.urandom(8).hex(), "-days", "2", "-sha256",
         "-extfile", ext, "-out", pem],
    ]
    for cmd in steps:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
        if r.returncode != 0:
            raise S3EnvError("%s failed: %s" % (" ".join(cmd[:3]), r.stderr.decode(errors="replace")))
    os.unlink(ca_key)  # nothing else will ever be signed by it
    return ca_pem, pem, key


def _wait_http(url, deadline, proc, what, context=None):
    while True:
        try:
            urllib.request.urlopen(url, timeout=1, context=context).read()
            return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None:
            raise S3EnvError("%s exited with status %d before answering" % (what, proc.returncode))
        if time.monotonic() > deadline:
            raise S3EnvError("%s did not answer on %s" % (what, url))
        time.sleep(0.02)


class S3Env:
    access_key = ACCESS_KEY
    secret_key = SECRET_KEY
    region = REGION

    def __init__(self, buckets=(DEFAULT_BUCKET,), faults=None, verbose=False, timeout=30,
                 tls=False):
        self.buckets = list(buckets)
        self.tls = tls
        self.ca_file = None
        self._ssl = None
        self.bucket = self.buckets[0] if self.buckets else None
        self.tmp = tempfile.mkdtemp(prefix="foldersync-s3-")
        self.s3rver = self.proxy = None
        self._logs = []
        _live.add(self)
        _install_handlers()
        t0 = time.monotonic()
        try:
            if tls:
                self.ca_file, self.tls_cert, self.tls_key = make_tls_files(self.tmp)
                self._ssl = ssl.create_default_context(cafile=self.ca_file)
            self._start_s3rver(timeout)
            self._create_buckets()
            self._start_proxy(faults, verbose, timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0

    # -- start -------------------------------------------------------------
    def _start_s3rver(self, timeout):
        if not os.access(S3RVER, os.X_OK):
            r = subprocess.run([INSTALL], stdout=sys.stderr)
            if r.returncode != 0 or not os.access(S3RVER, os.X_OK):
                raise S3EnvError("s3rver is not installed and %s failed" % INSTALL)
        env = dict(os.environ)
        env["NODE_OPTIONS"] = (env.get("NODE_OPTIONS", "") + " --openssl-legacy-provider").strip()
        data = os.path.join(self.tmp, "data")
        os.makedirs(data)
        for attempt in range(3):  # the free port can be taken between bind and listen
            self.s3rver_port = free_port()
            log = open(os.path.join(self.tmp, "s3rver.log"), "ab")
            self._logs.append(log)
            self.s3rver = subprocess.Popen(
                [S3RVER, "-d", data, "-a", "127.0.0.1", "-p", str(self.s3rver_port), "--silent"],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=_die_with_parent)
            self.upstream = "http://127.0.0.1:%d" % self.s3rver_port
            try:
                _wait_http(self.upstream + "/", time.monotonic() + timeout, self.s3rver, "s3rver")
                return
            except S3EnvError:
                self._kill(self.s3rver)
                if attempt == 2:
                    raise S3EnvError("s3rver failed to start:\n" + self.log("s3rver"))

    def _create_buckets(self):
        for b in self.buckets:
            url = "%s/%s" % (self.upstream, b)
            req = urllib.request.Request(url, method="PUT", data=b"",
                                         headers=sign_v4("PUT", url, {}))
            with urllib.request.urlopen(req, timeout=10) as r:
                r.read()

    def _start_proxy(self, faults, verbose, timeout):
        if not os.access(BOTO_PYTHON, os.X_OK):
            raise S3EnvError("%s not found: the proxy needs Debian's python3 with python3-botocore"
                             % BOTO_PYTHON)
        cmd = [BOTO_PYTHON, PROXY, "--upstream", self.upstream, "--port", "0",
               "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, "--region", REGION]
        if faults:
            cmd += ["--faults", json.dumps(faults)]
        if verbose:
            cmd.append("--verbose")
        if self.tls:
            cmd += ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        log = open(os.path.join(self.tmp, "proxy.log"), "ab")
        self._logs.append(log)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.proxy = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=log, env=env, preexec_fn=_die_with_parent)
        line = self.proxy.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.proxy.wait(5)
            raise S3EnvError("the SigV4 proxy did not start:\n" + self.log("proxy"))
        self.proxy_port = int(line.split()[1])
        self.endpoint = "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.proxy_port)
        self.control = self.endpoint + "/__proxy"
        _wait_http(self.control + "/stats", time.monotonic() + timeout, self.proxy, "the SigV4 proxy",
                   context=self._ssl)

    # -- use ---------------------------------------------------------------
    def log(self, which):
        try:
            with open(os.path.join(self.tmp, which + ".log"), errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def _control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.control + path, data=data,
                                     method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10, context=self._ssl) as r:
            return json.loads(r.read().decode())

    def stats(self):
        """The proxy's counters: requests, by_method_status {"GET 200": n},
        by_status, faults {kind: n}, auth, errors {S3 code: n}, bytes."""
        return self._control("/stats")

    def reset_stats(self):
        return self._control("/reset", {})

    def set_faults(self, spec=None, **kw):
        """set_faults(reset=0.03, slowdown=0.03, truncate=0.02, delay=0.1,
        delay_ms=300, seed=1); set_faults() turns them off."""
        spec = dict(spec or {}, **kw)
        return self._control("/faults", spec)

    def set_conditional(self, enforce=True):
        """Makes the proxy enforce If-None-Match: * / If-Match on PUT and
        CompleteMultipartUpload as AWS does (s3rver ignores them)."""
        return self._control("/conditional", {"enforce": bool(enforce)})

    def env(self):
        extra = {"FOLDERSYNC_TEST_S3_CA_FILE": self.ca_file} if self.ca_file else {}
        return dict(extra, **{
            "FOLDERSYNC_TEST_S3_ENDPOINT": self.endpoint,
            "FOLDERSYNC_TEST_S3_BUCKET": self.bucket or "",
            "FOLDERSYNC_TEST_S3_REGION": REGION,
            "FOLDERSYNC_TEST_S3_ACCESS_KEY": ACCESS_KEY,
            "FOLDERSYNC_TEST_S3_SECRET_KEY": SECRET_KEY,
            "FOLDERSYNC_TEST_S3_CONTROL": self.control,
        })

    # -- stop --------------------------------------------------------------
    @staticmethod
    def _kill(proc):
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop(self):
        for p in (self.proxy, self.s3rver):
            self._kill(p)
        if self.proxy is not None and self.proxy.stdout:
            self.proxy.stdout.close()
        for f in self._logs:
            f.close()
        self._logs = []
        shutil.rmtree(self.tmp, ignore_errors=True)
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def stop_all():
    for e in list(_live):
        e.stop()


_handlers_installed = False


def _install_handlers():
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(stop_all)

    def on_signal(signum, frame):
        stop_all()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        try:
            if signal.getsignal(s) in (signal.SIG_DFL, signal.default_int_handler):
                signal.signal(s, on_signal)
        except ValueError:  # not the main thread
            pass


def main(argv):
    """tests/s3/with-s3 [--bucket NAME]... [--faults JSON] [--tls] [--verbose] CMD ARGS..."""
    buckets, faults, verbose, tls = [], None, False, False
    args = list(argv)
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--":
            break
        if opt == "--bucket" and args:
            buckets.append(args.pop(0))
        elif opt == "--faults" and args:
            faults = json.loads(args.pop(0))
        elif opt == "--verbose":
            verbose = True
        elif opt == "--tls":
            tls = True
        else:
            sys.stderr.write(main.__doc__ + "\n")
            return 2
    if not args:
        sys.stderr.write(main.__doc__ + "\n")
        return 2
    try:
        env = S3Env(buckets=buckets or (DEFAULT_BUCKET,), faults=faults, verbose=verbose, tls=tls)
    except (S3EnvError, OSError) as e:
        sys.stderr.write("with-s3: %s\n" % e)
        return 1
    # a CA file inherited from an outer with-s3 --tls must not leak into a plain run
    child_env = {k: v for k, v in os.environ.items() if k != "FOLDERSYNC_TEST_S3_CA_FILE"}
    child_env.update(env.env())
    child = None

    def forward(signum, frame):
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    try:
        child = subprocess.Popen(args, env=child_env)
        rc = child.wait()
    except OSError as e:
        sys.stderr.write("with-s3: cannot run %s: %s\n" % (args[0], e))
        rc = 127
    finally:
        if os.environ.get("FOLDERSYNC_TEST_S3_QUIET") != "1":
            try:
                s = env.stats()
                sys.stderr.write("with-s3: proxy saw %d requests %s, faults %s, errors %s\n"
                                 % (s["requests"], json.dumps(s["by_method_status"], sort_keys=True),
                                    json.dumps({k: v for k, v in s["faults"].items() if v}),
                                    json.dumps(s["errors"], sort_keys=True)))
                if env.tls:
                    sys.stderr.write("with-s3: TLS: %d connection(s) carried S3 requests, %d handshake(s) refused\n"
                                     % (s["tls"]["s3_connections"], s["tls"]["handshake_failures"]))
            except (OSError, ValueError, KeyError):
                pass
        env.stop()
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
