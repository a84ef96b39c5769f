"""Proves the S3 test rig itself: s3rver behind the SigV4-verifying proxy
accepts correctly signed requests from independent clients (curl, botocore,
rclone), refuses wrong or tampered signatures and expired presigned URLs as
AWS would, and injects each fault kind as a client sees it. TAP output.

    python3 tests/s3/test_proxy.py
"""
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3env  # noqa: E402

BOTO_PYTHON = s3env.BOTO_PYTHON
ENV = None
TMP = None


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def bucket_url(key=""):
    return "%s/%s/%s" % (ENV.endpoint, ENV.bucket, key)


def curl(*args, secret=s3env.SECRET_KEY, payload="UNSIGNED-PAYLOAD", sign=True, timeout=30):
    """-> (curl exit code, http status, body bytes)"""
    out = os.path.join(TMP, "curl.out")
    if os.path.exists(out):
        os.unlink(out)
    cmd = ["curl", "-sS", "-o", out, "-w", "%{http_code}", "--max-time", str(timeout)]
    if sign:
        cmd += ["--aws-sigv4", "aws:amz:%s:s3" % s3env.REGION,
                "--user", "%s:%s" % (s3env.ACCESS_KEY, secret),
                "-H", "x-amz-content-sha256: %s" % payload]
    cmd += list(args)
    p = subprocess.run(cmd, capture_output=True)
    body = open(out, "rb").read() if os.path.exists(out) else b""
    code = p.stdout.decode().strip()
    return p.returncode, int(code) if code.isdigit() else 0, body, p.stderr.decode()


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def boto(script, *args):
    """Runs a botocore snippet under Debian's python; returns its stdout."""
    prelude = (
        "import sys, json, botocore.session\n"
        "from botocore.config import Config\n"
        "s = botocore.session.get_session()\n"
        "c = s.create_client('s3', endpoint_url=%r, region_name=%r, aws_access_key_id=%r,\n"
        "    aws_secret_access_key=%r, config=Config(signature_version='s3v4',\n"
        "    s3={'addressing_style': 'path'}, retries={'max_attempts': 1}))\n"
        % (ENV.endpoint, s3env.REGION, s3env.ACCESS_KEY, s3env.SECRET_KEY))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    p = subprocess.run([BOTO_PYTHON, "-c", prelude + script] + list(args),
                       capture_output=True, env=env, timeout=60)
    if p.returncode != 0:
        raise Failure("botocore snippet failed:\n" + p.stderr.decode()[-2000:])
    return p.stdout.decode()


def stats_delta(before, after, key):
    return after["by_method_status"].get(key, 0) - before["by_method_status"].get(key, 0)


def raw_request(method, path, headers, body=b""):
    u = urlsplit(ENV.endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- tests -----

def test_curl_signed_put_get_list():
    before = ENV.stats()
    data = b"hello through the proxy\n"
    src = write("hello.txt", data)
    rc, code, body, err = curl("-T", src, bucket_url("dir/hello%20w%C3%B6rld%2B%26.txt"))
    check(rc == 0 and code == 200, "unsigned-payload PUT: curl %d http %d %r %s" % (rc, code, body, err))
    rc, code, body, err = curl("-T", src, bucket_url("dir/hashed.txt"),
                               payload=hashlib.sha256(data).hexdigest())
    check(rc == 0 and code == 200, "sha256-payload PUT: curl %d http %d %r %s" % (rc, code, body, err))
    rc, code, body, err = curl(bucket_url("dir/hello%20w%C3%B6rld%2B%26.txt"))
    check(code == 200 and body == data, "GET: http %d %r" % (code, body))
    # curl 7.88 neither sorts nor re-encodes the query it signs (SigV4 wants both), so
    # the URL is given already canonical here; botocore's list in another test is not
    rc, code, body, err = curl(bucket_url("?list-type=2&max-keys=1&prefix=dir%2F"))
    check(code == 200 and b"<IsTruncated>true</IsTruncated>" in body and b"<KeyCount>1</KeyCount>" in body,
          "list with max-keys=1: http %d %r" % (code, body[:400]))
    rc, code, body, err = curl("-H", "x-amz-meta-note:   spaced    value  ", "-T", src,
                               bucket_url("dir/spaced.txt"))
    check(code == 200, "PUT with a multi-space header value: http %d %r" % (code, body))
    after = ENV.stats()
    check(stats_delta(before, after, "PUT 200") == 3 and stats_delta(before, after, "GET 200") == 2,
          "counters: %s" % after["by_method_status"])
    check(not after["errors"].get("SignatureDoesNotMatch"), "signature errors: %s" % after["errors"])


def test_wrong_secret_refused():
    before = ENV.stats()
    rc, code, body, err = curl(bucket_url("dir/hashed.txt"), secret="not-the-secret")
    check(code == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body,
          "wrong secret: http %d %r" % (code, body[:300]))
    src = write("w.txt", b"x")
    rc, code, body, err = curl("-T", src, bucket_url("dir/never.txt"), secret="not-the-secret")
    check(code == 403 and b"SignatureDoesNotMatch" in body, "wrong-secret PUT: http %d" % code)
    rc, code, body, err = curl(bucket_url("dir/never.txt"))
    check(code == 404, "the refused PUT reached s3rver: GET gives %d" % code)
    after = ENV.stats()
    check(stats_delta(before, after, "GET 403") == 1 and stats_delta(before, after, "PUT 403") == 1,
          "403 counters: %s" % after["by_method_status"])
    check(after["errors"].get("SignatureDoesNotMatch", 0) - before["errors"].get("SignatureDoesNotMatch", 0) == 2,
          "SignatureDoesNotMatch counter: %s" % after["errors"])
    status, body = raw_request("GET", "/%s/dir/hashed.txt" % ENV.bucket, {})
    check(status == 403 and b"AccessDenied" in body, "anonymous GET: %d %r" % (status, body[:200]))


def test_tampered_requests_refused():
    host = urlsplit(ENV.endpoint).netloc
    path = "/%s/dir/tamper.txt" % ENV.bucket
    data = b"original body"
    sha = hashlib.sha256(data).hexdigest()

    def signed():
        h = s3env.sign_v4("PUT", ENV.endpoint + path, {"x-amz-meta-owner": "alice",
                                                       "content-type": "text/plain"}, payload_hash=sha)
        h["Host"] = host
        return h
    status, body = raw_request("PUT", path, signed(), data)
    check(status == 200, "correctly signed PUT (control case): %d %r" % (status, body[:300]))
    h = signed()
    h["x-amz-meta-owner"] = "mallory"
    status, body = raw_request("PUT", path, h, data)
    check(status == 403 and b"SignatureDoesNotMatch" in body, "tampered signed header: %d %r" % (status, body[:200]))
    h = signed()
    h["content-type"] = "text/html"
    status, body = raw_request("PUT", path, h, data)
    check(status == 403 and b"SignatureDoesNotMatch" in body, "tampered content-type: %d" % status)
    status, body = raw_request("PUT", path, signed(), b"tampered body")
    check(status == 400 and b"XAmzContentSHA256Mismatch" in body, "tampered body: %d %r" % (status, body[:200]))
    h = signed()
    h["x-amz-meta-extra"] = "added"
    status, body = raw_request("PUT", path, h, data)
    check(status == 403 and b"not signed" in body, "unsigned x-amz header: %d %r" % (status, body[:200]))
    h = s3env.sign_v4("GET", ENV.endpoint + path, {})
    h["Host"] = host
    status, body = raw_request("GET", path + "?x-id=GetObject", h)
    check(status == 403 and b"SignatureDoesNotMatch" in body, "query added after signing: %d" % status)
    h = s3env.sign_v4("GET", ENV.endpoint + path, {},
                      now=s3env.datetime.datetime.now(s3env.datetime.timezone.utc)
                      - s3env.datetime.timedelta(minutes=20))
    h["Host"] = host
    status, body = raw_request("GET", path, h)
    check(status == 403 and b"RequestTimeTooSkewed" in body, "20 minutes old request: %d %r" % (status, body[:200]))
    rc, code, body, err = curl(bucket_url("dir/tamper.txt"))
    check(code == 200 and body == data, "object after the refused PUTs: %d %r" % (code, body))


def test_aws_chunked_upload_decoded():
    """STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the proxy checks each chunk
    signature and hands s3rver (which cannot decode aws-chunked) the plain body."""
    import datetime
    import hmac
    host = urlsplit(ENV.endpoint).netloc
    path = "/%s/dir/chunked.bin" % ENV.bucket
    data = os.urandom(70000)
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], s3env.REGION)
    key = ("AWS4" + s3env.SECRET_KEY).encode()
    for part in (amz_date[:8], s3env.REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()

    def body(tamper=False):
        h = s3env.sign_v4("PUT", ENV.endpoint + path,
                          {"content-encoding": "aws-chunked",
                           "x-amz-decoded-content-length": str(len(data))},
                          payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", now=now)
        prev = h["authorization"].rsplit("Signature=", 1)[1]
        out = b""
        for chunk in (data[:65536], data[65536:], b""):
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev,
                             hashlib.sha256(b"").hexdigest(), hashlib.sha256(chunk).hexdigest()])
            prev = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            if tamper and chunk:
                chunk = b"X" + chunk[1:]
            out += b"%x;chunk-signature=%s\r\n%s\r\n" % (len(chunk), prev.encode(), chunk)
        h["Host"] = host
        return h, out
    h, b = body()
    status, resp = raw_request("PUT", path, h, b)
    check(status == 200, "aws-chunked PUT: %d %r" % (status, resp[:300]))
    rc, code, got, err = curl(bucket_url("dir/chunked.bin"))
    check(code == 200 and got == data, "aws-chunked object came back %d bytes (want %d)" % (len(got), len(data)))
    h, b = body(tamper=True)
    status, resp = raw_request("PUT", path, h, b)
    check(status == 403 and b"SignatureDoesNotMatch" in resp, "tampered chunk: %d %r" % (status, resp[:200]))


def test_botocore_client_roundtrip():
    before = ENV.stats()
    out = boto(
        "body = bytes(range(256)) * 4096\n"
        "c.put_object(Bucket=sys.argv[1], Key='boto/obj w+é.bin', Body=body, Metadata={'k': 'v  v'})\n"
        "r = c.get_object(Bucket=sys.argv[1], Key='boto/obj w+é.bin', Range='bytes=10-19')\n"
        "assert r['Body'].read() == body[10:20]\n"
        "l = c.list_objects_v2(Bucket=sys.argv[1], Prefix='boto/')\n"
        "print(json.dumps([o['Key'] for o in l['Contents']]))\n", ENV.bucket)
    check(json.loads(out) == ["boto/obj w+é.bin"], "listing: %s" % out)
    after = ENV.stats()
    check(stats_delta(before, after, "PUT 200") == 1 and stats_delta(before, after, "GET 206") == 1,
          "counters: %s" % after["by_method_status"])


def test_presigned_urls():
    src = write("pre.txt", b"presigned content")
    rc, code, body, err = curl("-T", src, bucket_url("pre/a%20b.txt"))
    check(code == 200, "setup PUT: %d" % code)
    script = ("print(c.generate_presigned_url('get_object', Params={'Bucket': sys.argv[1], "
              "'Key': 'pre/a b.txt'}, ExpiresIn=int(sys.argv[2])))\n")
    url = boto(script, ENV.bucket, "300").strip()
    check("X-Amz-Signature=" in url and "X-Amz-Credential=" in url, "not a SigV4 presigned URL: " + url)
    rc, code, body, err = curl(url, sign=False)
    check(code == 200 and body == b"presigned content", "presigned GET: %d %r" % (code, body[:300]))
    rc, code, body, err = curl(url.replace("pre/a%20b.txt", "pre/other.txt"), sign=False)
    check(code == 403 and b"SignatureDoesNotMatch" in body, "presigned URL for another key: %d" % code)
    short = boto(script, ENV.bucket, "1").strip()
    time.sleep(2.2)
    before = ENV.stats()
    rc, code, body, err = curl(short, sign=False)
    check(code == 403 and b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body,
          "expired presigned GET: %d %r" % (code, body[:300]))
    after = ENV.stats()
    check(stats_delta(before, after, "GET 403") == 1, "counters: %s" % after["by_method_status"])


def test_fault_reset():
    ENV.set_faults(reset=1.0)
    try:
        before = ENV.stats()  # the control endpoint is never faulted
        rc, code, body, err = curl(bucket_url("dir/hashed.txt"))
        check(rc in (52, 56) and code == 0, "reset: curl exit %d http %d %s" % (rc, code, err))
    finally:
        ENV.set_faults()
    after = ENV.stats()
    check(after["faults"]["reset"] - before["faults"]["reset"] == 1, "reset counter: %s" % after["faults"])
    check(stats_delta(before, after, "GET reset") == 1, "counters: %s" % after["by_method_status"])


def test_fault_slowdown():
    ENV.set_faults(slowdown=1.0)
    try:
        before = ENV.stats()
        rc, code, body, err = curl(bucket_url("dir/hashed.txt"))
        check(code == 503 and b"<Code>SlowDown</Code>" in body, "slowdown: http %d %r" % (code, body[:200]))
    finally:
        ENV.set_faults()
    after = ENV.stats()
    check(after["faults"]["slowdown"] - before["faults"]["slowdown"] == 1, "slowdown counter: %s" % after["faults"])


def test_fault_truncate():
    data = os.urandom(200000)
    src = write("trunc.bin", data)
    rc, code, body, err = curl("-T", src, bucket_url("dir/trunc.bin"))
    check(code == 200, "setup PUT: %d" % code)
    ENV.set_faults(truncate=1.0)
    try:
        before = ENV.stats()
        rc, code, body, err = curl(bucket_url("dir/trunc.bin"))
        check(rc == 18 and code == 200 and 0 < len(body) < len(data) and data.startswith(body),
              "truncate: curl exit %d http %d, %d of %d bytes %s" % (rc, code, len(body), len(data), err))
    finally:
        ENV.set_faults()
    after = ENV.stats()
    check(after["faults"]["truncate"] - before["faults"]["truncate"] == 1, "truncate counter: %s" % after["faults"])
    rc, code, body, err = curl(bucket_url("dir/trunc.bin"))
    check(code == 200 and body == data, "whole body once faults are off: %d, %d bytes" % (code, len(body)))


def test_fault_delay():
    ENV.set_faults(delay=1.0, delay_ms=400)
    try:
        before = ENV.stats()
        t0 = time.monotonic()
        rc, code, body, err = curl(bucket_url("dir/hashed.txt"))
        elapsed = time.monotonic() - t0
        check(code == 200 and elapsed >= 0.4, "delay: http %d after %.3f s" % (code, elapsed))
        t0 = time.monotonic()
        ENV.stats()
        check(time.monotonic() - t0 < 0.3, "the control endpoint was delayed")
    finally:
        ENV.set_faults()
    after = ENV.stats()
    check(after["faults"]["delay"] - before["faults"]["delay"] == 1, "delay counter: %s" % after["faults"])


def test_fault_mix_is_seeded_and_counted():
    spec = {"reset": 0.2, "slowdown": 0.2, "truncate": 0.0, "delay": 0.2, "delay_ms": 10, "seed": 7}
    outcomes = []
    for _round in range(2):
        ENV.set_faults(spec)
        before = ENV.stats()
        seen = []
        try:
            for _ in range(25):
                rc, code, body, err = curl(bucket_url("dir/hashed.txt"))
                seen.append("reset" if code == 0 else str(code))
        finally:
            ENV.set_faults()
        after = ENV.stats()
        for kind, label in (("reset", "reset"), ("slowdown", "503")):
            n = after["faults"][kind] - before["faults"][kind]
            check(n == seen.count(label), "%s: proxy counted %d, client saw %d" % (kind, n, seen.count(label)))
        outcomes.append(seen)
    check(outcomes[0] == outcomes[1], "same seed, different faults:\n%s\n%s" % tuple(outcomes))
    check("reset" in outcomes[0] and "503" in outcomes[0] and "200" in outcomes[0],
          "mix did not produce every outcome: %s" % outcomes[0])


def test_conditional_writes_emulated():
    """s3rver ignores If-None-Match / If-Match on PUT; with /__proxy/conditional
    the proxy answers them as AWS does (and by default it lets them through)."""
    src = write("cond.txt", b"first")
    rc, code, body, err = curl("-T", src, bucket_url("cond/k"))
    check(code == 200, "setup PUT: http %d %r" % (code, body))
    rc, code, body, err = curl("-H", "If-None-Match: *", "-T", src, bucket_url("cond/k"))
    check(code == 200, "off by default: If-None-Match on an existing key gave http %d" % code)
    etag = hashlib.md5(b"first").hexdigest()
    ENV.set_conditional(True)
    try:
        before = ENV.stats()
        rc, code, body, err = curl("-H", "If-None-Match: *", "-T", src, bucket_url("cond/k"))
        check(code == 412 and b"<Code>PreconditionFailed</Code>" in body,
              "If-None-Match on an existing key: http %d %r" % (code, body[:200]))
        rc, code, body, err = curl("-H", "If-None-Match: *", "-T", src, bucket_url("cond/new"))
        check(code == 200, "If-None-Match on a new key: http %d %r" % (code, body[:200]))
        rc, code, body, err = curl("-H", 'If-Match: "0123"', "-T", src, bucket_url("cond/k"))
        check(code == 412, "If-Match with another ETag: http %d %r" % (code, body[:200]))
        rc, code, body, err = curl("-H", 'If-Match: "%s"' % etag, "-T", src, bucket_url("cond/k"))
        check(code == 200, "If-Match with the ETag: http %d %r" % (code, body[:200]))
        rc, code, body, err = curl("-H", 'If-Match: "%s"' % etag, "-T", src, bucket_url("cond/none"))
        check(code == 404 and b"<Code>NoSuchKey</Code>" in body,
              "If-Match on a missing key: http %d %r" % (code, body[:200]))
        after = ENV.stats()
        check(stats_delta(before, after, "PUT 412") == 2 and stats_delta(before, after, "PUT 200") == 2,
              "counters: %s" % after["by_method_status"])
    finally:
        ENV.set_conditional(False)


def test_rclone_copy_up_and_down():
    if shutil.which("rclone") is None:
        raise Skip("rclone is not installed (apt-get install rclone)")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}  # rclone 1.60 fails with it
    env.update(RCLONE_CONFIG_T_TYPE="s3", RCLONE_CONFIG_T_PROVIDER="Other",
               RCLONE_CONFIG_T_ENDPOINT=ENV.endpoint, RCLONE_CONFIG_T_ACCESS_KEY_ID=s3env.ACCESS_KEY,
               RCLONE_CONFIG_T_SECRET_ACCESS_KEY=s3env.SECRET_KEY, RCLONE_CONFIG_T_REGION=s3env.REGION,
               RCLONE_CONFIG_T_FORCE_PATH_STYLE="true", RCLONE_CONFIG=os.path.join(TMP, "rclone.conf"))
    before = ENV.stats()
    data = os.urandom(7 * 1024 * 1024 + 123)
    src = write("rc-up.bin", data)
    remote = "T:%s/rclone/up é+&.bin" % ENV.bucket

    def rclone(*args):
        p = subprocess.run(["rclone", "-q", "--retries", "1", "--low-level-retries", "1"] + list(args),
                           capture_output=True, env=env, timeout=120)
        check(p.returncode == 0, "rclone %s: %s" % (" ".join(args), p.stderr.decode()[-1500:]))
    rclone("copyto", src, remote)                                    # single PUT
    rclone("--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M",
           "copyto", src, "T:%s/rclone/multipart.bin" % ENV.bucket)   # multipart
    for name in ("up é+&.bin", "multipart.bin"):
        dst = os.path.join(TMP, "rc-down.bin")
        if os.path.exists(dst):
            os.unlink(dst)
        rclone("copyto", "T:%s/rclone/%s" % (ENV.bucket, name), dst)
        check(open(dst, "rb").read() == data, "%s came back different" % name)
    after = ENV.stats()
    check(after["errors"].get("SignatureDoesNotMatch", 0) == before["errors"].get("SignatureDoesNotMatch", 0),
          "rclone requests failed the signature check: %s" % after["errors"])
    check(stats_delta(before, after, "POST 200") == 2 and stats_delta(before, after, "GET 200") >= 2,
          "counters: %s" % after["by_method_status"])


def test_tls_mode():
    """S3Env(tls=True): https only, for 127.0.0.1 and localhost, from a CA
    that is trusted only when given; signatures still verified and counted."""
    if shutil.which("openssl") is None:
        raise Skip("openssl is not installed (apt-get install openssl)")
    with s3env.S3Env(tls=True) as tenv:
        check(tenv.endpoint.startswith("https://127.0.0.1:") and os.path.isfile(tenv.ca_file),
              "endpoint %s, CA %s" % (tenv.endpoint, tenv.ca_file))
        check(tenv.env()["FOLDERSYNC_TEST_S3_CA_FILE"] == tenv.ca_file, "CA_FILE not exported")
        port = urlsplit(tenv.endpoint).port
        for host in ("127.0.0.1", "localhost"):
            rc, code, body, err = curl("--cacert", tenv.ca_file,
                                       "https://%s:%d/%s?list-type=2" % (host, port, tenv.bucket))
            check(rc == 0 and code == 200 and b"ListBucketResult" in body, "%s: %d %d %s" % (host, rc, code, err))
        rc, code, _, _ = curl("--cacert", tenv.ca_file, "--user", "%s:wrong" % s3env.ACCESS_KEY,
                              "https://127.0.0.1:%d/%s?list-type=2" % (port, tenv.bucket))
        check(code == 403, "wrong secret over https: %d" % code)
        rc, code, _, err = curl("https://127.0.0.1:%d/%s?list-type=2" % (port, tenv.bucket))
        check(rc == 60, "curl without the CA: exit %d %s" % (rc, err))
        rc, _, _, _ = curl("http://127.0.0.1:%d/%s?list-type=2" % (port, tenv.bucket))
        check(rc != 0, "plain http answered on the TLS port")
        st = tenv.stats()
        check(st["by_method_status"] == {"GET 200": 2, "GET 403": 1}, "counters %s" % st["by_method_status"])
        check(st["tls"]["s3_connections"] == 3 and st["tls"]["handshake_failures"] == 2,
              "tls counters %s" % st["tls"])
    check(not os.path.exists(tenv.ca_file), "the CA outlived its env")


def main():
    global ENV, TMP
    TMP = tempfile.mkdtemp(prefix="fs-s3proxy-")
    tests = [test_curl_signed_put_get_list, test_wrong_secret_refused, test_tampered_requests_refused,
             test_aws_chunked_upload_decoded, test_botocore_client_roundtrip, test_presigned_urls, test_fault_reset, test_fault_slowdown,
             test_fault_truncate, test_fault_delay, test_fault_mix_is_seeded_and_counted,
             test_conditional_writes_emulated, test_rclone_copy_up_and_down, test_tls_mode]
    try:
        ENV = s3env.S3Env()
    except Exception as e:  # every test fails, with the reason
        print("1..%d" % len(tests))
        for i, t in enumerate(tests, 1):
            print("not ok %d %s\n# cannot start s3rver + proxy: %s" % (i, t.__name__, e))
        return 1
    print("# s3rver + SigV4 proxy started in %.2f s at %s" % (ENV.startup_seconds, ENV.endpoint))
    failed = 0
    print("1..%d" % len(tests))
    try:
        for i, test in enumerate(tests, 1):
            name = test.__name__
            t0 = time.monotonic()
            try:
                test()
                print("ok %d %s" % (i, name))
                print("# %s took %.2f s" % (name, time.monotonic() - t0))
            except Skip as e:
                print("ok %d %s # SKIP %s" % (i, name, e))
            except Exception as e:
                failed += 1
                print("not ok %d %s" % (i, name))
                for line in ("%s: %s" % (type(e).__name__, e)).splitlines():
                    print("# " + line)
                log = ENV.log("proxy")
                if log:
                    print("# proxy log (tail):")
                    for line in log.splitlines()[-15:]:
                        print("#   " + line)
            sys.stdout.flush()
        s = ENV.stats()
        print("# proxy totals: %d requests, faults %s" % (s["requests"], json.dumps(s["faults"])))
    finally:
        ENV.stop()
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
