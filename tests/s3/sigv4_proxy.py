#!/usr/bin/python3
"""A SigV4-verifying HTTP/1.1 proxy in front of s3rver, with fault injection.

s3rver checks only the access key id of a request, never its signature, so
every S3 test talks to this proxy instead. For each request it recomputes the
AWS Signature V4 with botocore (Debian's python3-botocore: the reference
signer) over exactly the headers the client listed in SignedHeaders, at the
client's own X-Amz-Date, and answers 403 SignatureDoesNotMatch when it does
not reproduce the client's signature, as AWS S3 and MinIO do. Requests that
pass are forwarded to s3rver (kept-alive upstream connection per client
connection) and the response is streamed back. A PUT or POST body is
forwarded only once it has arrived whole, so a client that stops inside it
leaves the object as it was, as on S3 (s3rver alone would truncate it).

Control endpoint (never faulted, never counted), on the same port under
/__proxy/ (bucket names cannot contain '_', so it cannot clash with S3):
  GET  /__proxy/stats   counters as JSON (once no S3 request is in flight, 5 s at most)
  POST /__proxy/reset   zero the counters (likewise)
  GET  /__proxy/faults  current fault settings
  POST /__proxy/faults  JSON {"reset": p, "slowdown": p, "truncate": p,
                        "delay": p, "delay_ms": ms, "seed": n}; keys left out
                        are 0; {} turns faults off
  GET  /__proxy/conditional  {"enforce": bool}
  POST /__proxy/conditional  JSON {"enforce": true}: emulate AWS's conditional
                        writes, which s3rver ignores (If-None-Match: * and
                        If-Match on a PUT of an object or on
                        CompleteMultipartUpload, checked against a HEAD of
                        the key just before forwarding: not atomic, for
                        sequential tests); off by default

Run with Debian's python (it imports botocore):
  /usr/bin/python3 tests/s3/sigv4_proxy.py --upstream http://127.0.0.1:PORT
It prints "PORT <n>" on stdout once it listens. With --tls-cert/--tls-key it
speaks https only (S3 and the control endpoint alike): the listening socket
stays plain and each accepted connection does its TLS handshake in its own
thread, so a client that refuses the certificate cannot stall the others;
handshakes are counted under "tls" in the stats: "handshakes" (control calls
included), "s3_connections" (those that carried an S3 request),
"handshake_failures" and "last_failure".
"""
import argparse
import calendar
import email.utils
import hashlib
import http.client
import http.server
import json
import random
import re
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
import traceback
from urllib.parse import quote, unquote_to_bytes, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import EMPTY_SHA256_HASH, S3SigV4Auth, S3SigV4QueryAuth, SIGV4_TIMESTAMP
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

UNSIGNED = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
MAX_SKEW = 15 * 60
SPOOL_IN_MEMORY = 8 << 20
COPY_BUF = 256 << 10
UPSTREAM_IDLE_MAX = 3.0     # node closes idle keep-alive sockets after 5 s
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
              "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect",
              "proxy-connection"}
FAULT_KINDS = ("reset", "slowdown", "truncate", "delay")


class S3Error(Exception):
    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def body(self):
        parts = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>"
                 % (escape(self.code), escape(self.message))]
        for k, v in self.extra.items():
            parts.append("<%s>%s</%s>" % (k, escape(str(v)), k))
        parts.append("<Resource/><RequestId>proxy</RequestId></Error>")
        return "".join(parts).encode()


# ---------------------------------------------------------------- signing ---

class _ClientSignedMixin:
    """botocore's SigV4 canonicalisation, restricted to exactly the headers the
    client listed in SignedHeaders (botocore's own signer would drop
    user-agent/expect/x-amzn-trace-id and add host itself) and to the client's
    payload hash. The timestamp is the client's: it goes in
    request.context['timestamp'], which is where add_auth() would put
    utcnow(); we call the same steps add_auth() does (canonical_request,
    string_to_sign, signature) without its header rewriting."""

    def __init__(self, credentials, service, region, signed_names, payload_hash):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names
        self._payload_hash = payload_hash

    def headers_to_sign(self, request):
        header_map = HTTPHeaders()
        for name in self._signed_names:
            values = request.headers.get_all(name)
            if values is None:
                raise S3Error(403, "AccessDenied",
                              "Header %s is in SignedHeaders but not in the request" % name)
            for v in values:
                header_map[name] = v
        return header_map

    def payload(self, request):
        return self._payload_hash


class HeaderSigner(_ClientSignedMixin, S3SigV4Auth):
    pass


class QuerySigner(_ClientSignedMixin, S3SigV4QueryAuth):
    pass


def _header_text(value):
    """http.server decodes header bytes as latin-1; SigV4 hashes the bytes as
    sent, which botocore encodes as UTF-8: give it the UTF-8 reading."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def canonical_path(raw_path):
    """S3's canonical URI: each segment decoded and URI-encoded once
    (unreserved characters kept), no dot-segment or slash normalisation."""
    return "/".join(quote(unquote_to_bytes(seg), safe="") for seg in raw_path.split("/"))


def query_pairs(raw_query):
    pairs = []
    for piece in raw_query.split("&") if raw_query else []:
        if not piece:
            continue
        k, _, v = piece.partition("=")
        pairs.append((unquote_to_bytes(k).decode("utf-8", "surrogateescape"),
                      unquote_to_bytes(v).decode("utf-8", "surrogateescape")))
    return pairs


def parse_timestamp(ts):
    try:
        return calendar.timegm(time.strptime(ts, SIGV4_TIMESTAMP))
    except (ValueError, TypeError):
        return None


class Verifier:
    def __init__(self, access_key, secret_key, region, service="s3", check_skew=True):
        self.creds = Credentials(access_key, secret_key)
        self.access_key = access_key
        self.region = region
        self.service = service
        self.check_skew = check_skew

    def _scope(self, credential):
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; the Credential is mal-formed; "
                          "expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
        akid, date, region, service, _ = parts
        if akid != self.access_key:
            raise S3Error(403, "InvalidAccessKeyId",
                          "The AWS Access Key Id you provided does not exist in our records.",
                          AWSAccessKeyId=akid)
        if region != self.region:
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; the region '%s' is wrong; "
                          "expecting '%s'" % (region, self.region), Region=self.region)
        if service != self.service:
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; incorrect service \"%s\". "
                          "This endpoint belongs to \"%s\"." % (service, self.service))
        return date

    def _compute(self, signer, method, host, raw_path, params, headers, timestamp):
        req = AWSRequest(method=method, url="http://%s%s" % (host, canonical_path(raw_path)))
        req.headers = HTTPHeaders()
        for k, v in headers:
            req.headers[k.lower()] = _header_text(v)
        req.params = params
        req.context["timestamp"] = timestamp
        creq = signer.canonical_request(req)
        sts = signer.string_to_sign(req, creq)
        return signer.signature(sts, req), creq, sts, signer, req

    def verify_header(self, method, raw_path, raw_query, headers, authorization):
        """Returns (signer, request, seed signature, payload hash) on success."""
        algo, _, rest = authorization.strip().partition(" ")
        if algo != "AWS4-HMAC-SHA256":
            raise S3Error(400, "InvalidArgument", "Unsupported Authorization Type")
        comps = {}
        for part in rest.split(","):
            k, _, v = part.strip().partition("=")
            comps[k.strip()] = v.strip()
        for k in ("Credential", "SignedHeaders", "Signature"):
            if k not in comps:
                raise S3Error(400, "AuthorizationHeaderMalformed",
                              "The authorization header is malformed; missing %s." % k)
        scope_date = self._scope(comps["Credential"])
        hmap = {k.lower(): v for k, v in headers}
        timestamp = hmap.get("x-amz-date")
        if timestamp is None and "date" in hmap:
            parsed = email.utils.parsedate_tz(hmap["date"])
            if parsed:
                timestamp = time.strftime(SIGV4_TIMESTAMP, time.gmtime(email.utils.mktime_tz(parsed)))
        t = parse_timestamp(timestamp)
        if t is None:
            raise S3Error(403, "AccessDenied",
                          "AWS authentication requires a valid Date or x-amz-date header")
        if self.check_skew and abs(time.time() - t) > MAX_SKEW:
            raise S3Error(403, "RequestTimeTooSkewed",
                          "The difference between the request time and the current time is too large.",
                          RequestTime=timestamp,
                          ServerTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                          MaxAllowedSkewMilliseconds=MAX_SKEW * 1000)
        signed = [n.strip().lower() for n in comps["SignedHeaders"].split(";") if n.strip()]
        if "host" not in signed:
            raise S3Error(400, "AuthorizationHeaderMalformed",
                          "The authorization header is malformed; host must be a signed header.")
        unsigned_amz = sorted({k for k in hmap if k.startswith("x-amz-")} - set(signed))
        if unsigned_amz:
            raise S3Error(403, "AccessDenied",
                          "There were headers present in the request which were not signed",
                          HeadersNotSigned=", ".join(unsigned_amz))
        payload = hmap.get("x-amz-content-sha256")
        if payload is None:
            raise S3Error(400, "InvalidRequest",
                          "Missing required header for this request: x-amz-content-sha256")
        if not (payload in (UNSIGNED, STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER,
                            STREAMING_SIGNED_TRAILER) or re.fullmatch(r"[0-9a-f]{64}", payload)):
            raise S3Error(400, "InvalidArgument",
                          "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-..., "
                          "or a valid sha256 value.", ArgumentValue=payload)
        signer = HeaderSigner(self.creds, self.service, self.region, signed, payload)
        sig, creq, sts, signer, req = self._compute(
            signer, method, hmap.get("host", ""), raw_path, query_pairs(raw_query), headers, timestamp)
        if scope_date != timestamp[:8] or not _consteq(sig, comps["Signature"]):
            raise S3Error(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature "
                          "you provided. Check your key and signing method.",
                          AWSAccessKeyId=self.access_key, StringToSign=sts, CanonicalRequest=creq)
        return signer, req, sig, payload

    def verify_query(self, method, raw_path, raw_query, headers):
        pairs = query_pairs(raw_query)
        q = dict(pairs)
        if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise S3Error(400, "AuthorizationQueryParametersError",
                          "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        for k in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders",
                  "X-Amz-Signature"):
            if k not in q:
                raise S3Error(400, "AuthorizationQueryParametersError",
                              "Query-string authentication version 4 requires the X-Amz-Algorithm, "
                              "X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, "
                              "and X-Amz-Expires parameters.")
        scope_date = self._scope(q["X-Amz-Credential"])
        timestamp = q["X-Amz-Date"]
        t = parse_timestamp(timestamp)
        if t is None:
            raise S3Error(400, "AuthorizationQueryParametersError",
                          "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
        try:
            expires = int(q["X-Amz-Expires"])
        except ValueError:
            expires = -1
        if expires < 0 or expires > 604800:
            raise S3Error(400, "AuthorizationQueryParametersError",
                          "X-Amz-Expires must be non-negative and less than a week (604800 seconds)")
        now = time.time()
        if now > t + expires:
            raise S3Error(403, "AccessDenied", "Request has expired",
                          XAmzExpires=expires,
                          Expires=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t + expires)),
                          ServerTime=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
        if self.check_skew and t - now > MAX_SKEW:
            raise S3Error(403, "AccessDenied", "Request is not valid yet")
        signed = [n.strip().lower() for n in q["X-Amz-SignedHeaders"].split(";") if n.strip()]
        hmap = {k.lower(): v for k, v in headers}
        signer = QuerySigner(self.creds, self.service, self.region, signed, UNSIGNED)
        params = [(k, v) for k, v in pairs if k != "X-Amz-Signature"]
        sig, creq, sts, _, _ = self._compute(
            signer, method, hmap.get("host", ""), raw_path, params,
            [(k, v) for k, v in headers if k.lower() in signed], timestamp)
        if scope_date != timestamp[:8] or not _consteq(sig, q["X-Amz-Signature"]):
            raise S3Error(403, "SignatureDoesNotMatch",
                          "The request signature we calculated does not match the signature "
                          "you provided. Check your key and signing method.",
                          AWSAccessKeyId=self.access_key, StringToSign=sts, CanonicalRequest=creq)


def _consteq(a, b):
    return len(a) == len(b) and hashlib.sha256(a.encode()).digest() == hashlib.sha256(b.encode()).digest()


# ---------------------------------------------------------------- state -----

class State:
    def __init__(self):
        self.lock = threading.Lock()
        # S3 requests being handled: a stats snapshot waits for them, as a
        # client may have its whole response before the request is counted.
        self.in_flight = 0
        self.idle = threading.Condition(self.lock)
        self.faults = {}
        self.conditional = False
        self.rng = random.Random(0)
        self.reset_stats()

    def reset_stats(self):
        self.started = time.time()
        self.stats = {"requests": 0, "by_method_status": {}, "by_status": {},
                      "faults": {k: 0 for k in FAULT_KINDS},
                      "auth": {"header": 0, "presigned": 0, "anonymous": 0},
                      "payload": {"signed": 0, "unsigned": 0, "streaming": 0},
                      "errors": {}, "bytes_in": 0, "bytes_out": 0,
                      "tls": {"handshakes": 0, "s3_connections": 0, "handshake_failures": 0,
                              "last_failure": None}}

    def set_faults(self, spec):
        clean = {}
        for k in FAULT_KINDS:
            v = float(spec.get(k, 0) or 0)
            if not 0 <= v <= 1:
                raise ValueError("%s must be a probability in [0, 1]" % k)
            clean[k] = v
        if clean["reset"] + clean["slowdown"] + clean["truncate"] > 1:
            raise ValueError("reset + slowdown + truncate must not exceed 1")
        clean["delay_ms"] = int(spec.get("delay_ms", 300) or 0)
        clean["seed"] = spec.get("seed")
        with self.lock:
            self.faults = clean
            self.rng = random.Random(clean["seed"])
        return clean

    def draw(self):
        """-> (exclusive fault or None, delay seconds)"""
        with self.lock:
            f = self.faults
            if not f:
                return None, 0
            r = self.rng.random()
            d = self.rng.random()
        kind = None
        acc = 0.0
        for k in ("reset", "slowdown", "truncate"):
            acc += f[k]
            if r < acc:
                kind = k
                break
        return kind, (f["delay_ms"] / 1000.0 if d < f["delay"] else 0)

    def count(self, method, status, error=None, fault=None, auth=None, bytes_in=0, bytes_out=0):
        with self.lock:
            s = self.stats
            s["requests"] += 1
            key = "%s %s" % (method, status)
            s["by_method_status"][key] = s["by_method_status"].get(key, 0) + 1
            s["by_status"][str(status)] = s["by_status"].get(str(status), 0) + 1
            if error:
                s["errors"][error] = s["errors"].get(error, 0) + 1
            for f in fault or ():
                s["faults"][f] += 1
            if auth:
                s["auth"][auth] += 1
            s["bytes_in"] += bytes_in
            s["bytes_out"] += bytes_out

    def count_payload(self, payload):
        """How a header-signed request's x-amz-content-sha256 covered its body."""
        kind = ("unsigned" if payload == UNSIGNED else
                "streaming" if payload.startswith("STREAMING-") else "signed")
        with self.lock:
            self.stats["payload"][kind] += 1

    def wait_idle(self):
        """With the lock held: until no S3 request is in flight (5 s at most)."""
        self.idle.wait_for(lambda: self.in_flight == 0, timeout=5)

    def snapshot(self):
        with self.lock:
            self.wait_idle()
            snap = json.loads(json.dumps(self.stats))
            snap["faults_config"] = dict(self.faults)
            snap["uptime_s"] = round(time.time() - self.started, 3)
        return snap


# ---------------------------------------------------------------- bodies ----

class BodyError(Exception):
    pass


def read_exact(rfile, n):
    data = rfile.read(n)
    if data is None or len(data) != n:
        raise BodyError("client closed the connection inside the body")
    return data


def iter_body(rfile, headers):
    """Yields the HTTP request body (Content-Length or chunked framing)."""
    te = headers.get("transfer-encoding", "").lower()
    if "chunked" in te:
        while True:
            line = rfile.readline(65537)
            if not line.endswith(b"\n"):
                raise BodyError("bad chunk header")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BodyError("bad chunk header")
            if size == 0:
                while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return
            remaining = size
            while remaining:
                part = read_exact(rfile, min(remaining, COPY_BUF))
                remaining -= len(part)
                yield part
            read_exact(rfile, 2)
    else:
        try:
            remaining = int(headers.get("content-length", "0") or 0)
        except ValueError:
            raise BodyError("bad Content-Length")
        while remaining:
            part = read_exact(rfile, min(remaining, COPY_BUF))
            remaining -= len(part)
            yield part


class _ChunkReader:
    """A file-like view over an iterator of byte strings."""

    def __init__(self, it):
        self.it, self.buf = it, b""

    def read(self, n):
        while len(self.buf) < n:
            try:
                self.buf += next(self.it)
            except StopIteration:
                break
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def readline(self, limit=65536):
        while b"\n" not in self.buf and len(self.buf) < limit:
            try:
                self.buf += next(self.it)
            except StopIteration:
                break
        i = self.buf.find(b"\n")
        i = len(self.buf) if i < 0 else i + 1
        out, self.buf = self.buf[:i], self.buf[i:]
        return out


def decode_aws_chunked(source, spool, signer=None, req=None, seed=None):
    """Decodes an aws-chunked body into spool, checking each chunk signature
    (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) with botocore's signing key
    derivation when a signer is given. Returns the trailer lines."""
    prev = seed
    while True:
        line = source.readline()
        if not line.endswith(b"\n"):
            raise S3Error(400, "IncompleteBody", "aws-chunked body ended inside a chunk header")
        head = line.strip().decode("latin-1")
        size_hex, _, ext = head.partition(";")
        try:
            size = int(size_hex, 16)
        except ValueError:
            raise S3Error(400, "IncompleteBody", "bad aws-chunked chunk header")
        data = source.read(size) if size else b""
        if len(data) != size:
            raise S3Error(400, "IncompleteBody", "aws-chunked body shorter than its chunk sizes")
        if signer is not None:
            k, _, given = ext.partition("=")
            if k.strip() != "chunk-signature":
                raise S3Error(403, "SignatureDoesNotMatch", "aws-chunked chunk without chunk-signature")
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", req.context["timestamp"],
                             signer.credential_scope(req), prev, EMPTY_SHA256_HASH,
                             hashlib.sha256(data).hexdigest()])
            want = signer.signature(sts, req)
            if not _consteq(want, given.strip()):
                raise S3Error(403, "SignatureDoesNotMatch",
                              "The chunk signature we calculated does not match the one you provided.",
                              StringToSign=sts)
            prev = want
        if size == 0:
            trailer = []
            while True:
                tl = source.readline()
                if tl.strip() == b"":
                    return trailer
                trailer.append(tl.strip().decode("latin-1"))
        spool.write(data)
        if source.read(2) != b"\r\n":
            raise S3Error(400, "IncompleteBody", "aws-chunked chunk not followed by CRLF")


# ---------------------------------------------------------------- handler ---

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sigv4-proxy"
    timeout = 300
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("sigv4-proxy: %s\n" % (fmt % args))

    def _upstream(self, fresh=False):
        conn = getattr(self, "_up", None)
        if conn is not None and (fresh or time.monotonic() - self._up_used > UPSTREAM_IDLE_MAX):
            conn.close()
            conn = None
        if conn is None:
            u = self.server.upstream
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
            self._up = conn
        self._up_used = time.monotonic()
        return conn

    def _drop_upstream(self):
        conn = getattr(self, "_up", None)
        if conn is not None:
            conn.close()
        self._up = None

    def finish(self):
        self._drop_upstream()
        super().finish()

    # every method goes through here
    def do_GET(self):
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_PATCH = do_GET

    def _send_simple(self, status, body, ctype="application/xml", extra=()):
        self.send_response_only(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", "proxy")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return len(body)

    def _abort_connection(self):
        """Close the client socket at once with a RST, no response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _control(self, path):
        st = self.server.state
        n = int(self.headers.get("content-length", "0") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            if path == "/__proxy/stats" and self.command == "GET":
                out = st.snapshot()
            elif path == "/__proxy/reset" and self.command == "POST":
                with st.lock:
                    st.wait_idle()  # a late request must not count after the reset
                    st.reset_stats()
                out = {"ok": True}
            elif path == "/__proxy/faults" and self.command == "GET":
                out = dict(st.faults)
            elif path == "/__proxy/faults" and self.command == "POST":
                out = st.set_faults(json.loads(raw.decode() or "{}"))
            elif path == "/__proxy/conditional" and self.command == "GET":
                out = {"enforce": st.conditional}
            elif path == "/__proxy/conditional" and self.command == "POST":
                enforce = json.loads(raw.decode() or "{}").get("enforce", False)
                if not isinstance(enforce, bool):
                    raise ValueError("enforce must be true or false")
                with st.lock:
                    st.conditional = enforce
                out = {"enforce": enforce}
            else:
                self._send_simple(404, b'{"error": "no such control endpoint"}\n', "application/json")
                return
        except (ValueError, TypeError) as e:
            self._send_simple(400, json.dumps({"error": str(e)}).encode() + b"\n", "application/json")
            return
        self._send_simple(200, json.dumps(out, indent=1, sort_keys=True).encode() + b"\n",
                          "application/json")

    def _handle(self):
        st = self.server.state
        split = urlsplit(self.path)
        raw_path, raw_query = split.path or "/", split.query
        if raw_path.startswith("/__proxy/"):
            return self._control(raw_path)
        with st.lock:
            st.in_flight += 1
        try:
            self._s3_request(st, raw_path, raw_query)
        finally:
            with st.lock:
                st.in_flight -= 1
                st.idle.notify_all()

    def _s3_request(self, st, raw_path, raw_query):
        if self.server.tls is not None and not getattr(self, "_tls_counted", False):
            self._tls_counted = True
            with st.lock:
                st.stats["tls"]["s3_connections"] += 1
        headers = list(self.headers.items())
        hmap = {k.lower(): v for k, v in headers}
        body_iter = iter_body(self.rfile, hmap)
        method = self.command
        auth = None
        spool = None
        fwd_headers = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        bytes_in = 0
        try:
            try:
                query_keys = {k for k, _ in query_pairs(raw_query)}
                if "authorization" in hmap:
                    auth = "header"
                    signer, req, seed, payload = self.server.verifier.verify_header(
                        method, raw_path, raw_query, headers, hmap["authorization"])
                    st.count_payload(payload)
                elif "X-Amz-Algorithm" in query_keys or "X-Amz-Signature" in query_keys:
                    auth = "presigned"
                    self.server.verifier.verify_query(method, raw_path, raw_query, headers)
                    payload = UNSIGNED
                else:
                    auth = "anonymous"
                    raise S3Error(403, "AccessDenied", "Anonymous requests are refused by the test proxy")

                te_chunked = "chunked" in hmap.get("transfer-encoding", "").lower()
                # the body: streamed through when nothing needs it, else spooled
                if payload in (STREAMING_SIGNED, STREAMING_UNSIGNED_TRAILER):
                    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
                    src = _ChunkReader(body_iter)
                    decode_aws_chunked(src, spool, *((signer, req, seed) if payload == STREAMING_SIGNED else ()))
                    bytes_in = spool.tell()
                    enc = [e.strip() for e in hmap.get("content-encoding", "").split(",")
                           if e.strip() and e.strip() != "aws-chunked"]
                    fwd_headers = [(k, v) for k, v in fwd_headers
                                   if k.lower() not in ("content-length", "content-encoding",
                                                        "x-amz-decoded-content-length",
                                                        "x-amz-content-sha256", "x-amz-trailer")]
                    if enc:
                        fwd_headers.append(("Content-Encoding", ", ".join(enc)))
                    fwd_headers.append(("x-amz-content-sha256", UNSIGNED))
                elif payload == STREAMING_SIGNED_TRAILER:
                    raise S3Error(501, "NotImplemented",
                                  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER is not supported by the test proxy")
                elif payload != UNSIGNED or te_chunked or method in ("PUT", "POST"):
                    # Whole bodies only: s3rver writes a PUT into the object's
                    # file as it arrives (a client that stops halfway would
                    # leave it truncated), where S3 and MinIO keep the old
                    # object until the new one is complete.
                    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
                    h = hashlib.sha256()
                    for part in body_iter:
                        h.update(part)
                        spool.write(part)
                    bytes_in = spool.tell()
                    if payload != UNSIGNED and h.hexdigest() != payload:
                        raise S3Error(400, "XAmzContentSHA256Mismatch",
                                      "The provided 'x-amz-content-sha256' header does not match what was computed.",
                                      ClientComputedContentSHA256=payload,
                                      S3ComputedContentSHA256=h.hexdigest())
                if spool is not None:
                    fwd_headers = [(k, v) for k, v in fwd_headers if k.lower() != "content-length"]
                    fwd_headers.append(("Content-Length", str(spool.tell())))
                    spool.seek(0)
                if st.conditional and ("if-none-match" in hmap or "if-match" in hmap) and (
                        (method == "PUT" and "partNumber" not in query_keys)
                        or (method == "POST" and "uploadId" in query_keys)):
                    self._check_precondition(raw_path, hmap)
            except S3Error as e:
                for _ in body_iter:   # drain, so the 403 reaches the client and the connection lives
                    pass
                n = self._send_simple(e.status, e.body())
                st.count(method, e.status, error=e.code, auth=auth, bytes_out=n)
                if self.server.verbose or e.code == "SignatureDoesNotMatch":
                    sys.stderr.write("sigv4-proxy: %s %s -> %d %s: %s\n"
                                     % (method, self.path, e.status, e.code, e.message))
                return

            fault, delay = st.draw()
            if fault in ("reset", "slowdown"):
                if spool is None:
                    for part in body_iter:
                        bytes_in += len(part)
                if fault == "reset":
                    st.count(method, "reset", fault=["reset"] + (["delay"] if delay else []),
                             auth=auth, bytes_in=bytes_in)
                    if delay:
                        time.sleep(delay)
                    self._abort_connection()
                    return
                if delay:
                    time.sleep(delay)
                e = S3Error(503, "SlowDown", "Please reduce your request rate.")
                n = self._send_simple(503, e.body())
                st.count(method, 503, error="SlowDown", fault=["slowdown"] + (["delay"] if delay else []),
                         auth=auth, bytes_in=bytes_in, bytes_out=n)
                return
            if delay:
                time.sleep(delay)
            self._forward(method, fwd_headers, spool, body_iter, auth, bytes_in,
                          truncate=(fault == "truncate"), delayed=bool(delay))
        except BodyError as e:
            # The client stopped inside the body: the upstream connection may
            # have part of it, and must never carry the next request after it.
            self._drop_upstream()
            self.close_connection = True
            st.count(method, "client-error", error="BodyError", auth=auth)
            sys.stderr.write("sigv4-proxy: %s %s: %s\n" % (method, self.path, e))
        finally:
            if spool is not None:
                spool.close()

    def _check_precondition(self, raw_path, hmap):
        """AWS's conditional writes, from a HEAD of the key in s3rver: raises
        412 PreconditionFailed (or 404 NoSuchKey for If-Match on a missing
        key) as AWS answers a PUT or CompleteMultipartUpload."""
        u = self.server.upstream
        head = AWSRequest(method="HEAD", url="http://%s%s" % (u.netloc, raw_path),
                          headers={"x-amz-content-sha256": UNSIGNED})
        S3SigV4Auth(self.server.verifier.creds, "s3", self.server.verifier.region).add_auth(head)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            conn.request("HEAD", raw_path, headers=dict(head.headers.items()))
            resp = conn.getresponse()
            resp.read()
        finally:
            conn.close()
        if resp.status not in (200, 404):
            raise S3Error(503, "ServiceUnavailable", "test proxy: HEAD for a precondition got %d" % resp.status)
        etag = resp.getheader("ETag", "").strip('"') if resp.status == 200 else None
        none_match = hmap.get("if-none-match")
        if none_match is not None and none_match.strip() == "*" and etag is not None:
            raise S3Error(412, "PreconditionFailed",
                          "At least one of the pre-conditions you specified did not hold",
                          Condition="If-None-Match")
        match = hmap.get("if-match")
        if match is not None:
            if etag is None:
                raise S3Error(404, "NoSuchKey", "The specified key does not exist.")
            if match.strip().strip('"') != etag:
                raise S3Error(412, "PreconditionFailed",
                              "At least one of the pre-conditions you specified did not hold",
                              Condition="If-Match")

    def _send_upstream(self, method, fwd_headers, spool, body_iter):
        """-> (response, bytes sent). Retries once on a stale kept-alive
        upstream connection when the body can be replayed."""
        replayable = spool is not None or "content-length" not in {k.lower() for k, _ in fwd_headers} \
            or int(dict((k.lower(), v) for k, v in fwd_headers).get("content-length", "0")) == 0
        for attempt in (0, 1):
            conn = self._upstream(fresh=attempt > 0)
            sent = 0
            try:
                conn.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in fwd_headers:
                    conn.putheader(k, v)
                conn.endheaders()
                if spool is not None:
                    spool.seek(0)
                    while True:
                        part = spool.read(COPY_BUF)
                        if not part:
                            break
                        conn.send(part)
                        sent += len(part)
                elif not replayable or attempt == 0:
                    for part in body_iter:
                        conn.send(part)
                        sent += len(part)
                resp = conn.getresponse()
                return resp, sent
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self._drop_upstream()
                if attempt or not replayable:
                    raise
                sys.stderr.write("sigv4-proxy: upstream connection dropped (%s), retrying once\n" % e)

    def _forward(self, method, fwd_headers, spool, body_iter, auth, bytes_in, truncate, delayed):
        st = self.server.state
        faults = ["delay"] if delayed else []
        try:
            resp, sent = self._send_upstream(method, fwd_headers, spool, body_iter)
        except (OSError, http.client.HTTPException) as e:
            self._drop_upstream()
            sys.stderr.write("sigv4-proxy: %s %s: upstream failed: %r\n" % (method, self.path, e))
            if self.server.verbose:
                traceback.print_exc()
            err = S3Error(502, "BadGateway", "test proxy: upstream s3rver failed: %s" % e)
            n = self._send_simple(502, err.body())
            self.close_connection = True
            st.count(method, 502, error="BadGateway", fault=faults, auth=auth, bytes_out=n)
            return
        bytes_in = max(bytes_in, sent)
        length = resp.getheader("content-length")
        no_body = method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        chunked_out = not no_body and length is None
        if chunked_out:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        out = 0
        if truncate and not no_body and (length is None or int(length) > 0):
            # send part of the body, then close both sides
            limit = max(0, int(length) // 2) if length is not None else 1
            while out < limit:
                part = resp.read(min(COPY_BUF, limit - out))
                if not part:
                    break
                if chunked_out:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    self.wfile.write(part)
                out += len(part)
            self._drop_upstream()
            self.close_connection = True
            st.count(method, resp.status, fault=faults + ["truncate"], auth=auth,
                     bytes_in=bytes_in, bytes_out=out)
            return
        if not no_body:
            while True:
                part = resp.read1(COPY_BUF) if hasattr(resp, "read1") else resp.read(COPY_BUF)
                if not part:
                    break
                if chunked_out:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    self.wfile.write(part)
                out += len(part)
            if chunked_out:
                self.wfile.write(b"0\r\n\r\n")
        else:
            resp.read()
        resp.close()  # read1() leaves a fully read response open: the connection could not be reused
        if resp.will_close:
            self._drop_upstream()
        err = None
        if resp.status >= 400:
            err = "upstream-%d" % resp.status
        st.count(method, resp.status, error=err, fault=faults, auth=auth, bytes_in=bytes_in, bytes_out=out)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    tls = None  # an ssl.SSLContext: https on every connection

    def finish_request(self, request, client_address):
        """Runs in the connection's thread. With TLS, the handshake happens
        here (not in accept(), which would serialise clients)."""
        if self.tls is None:
            return super().finish_request(request, client_address)
        request.settimeout(30)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self.state.lock:
                t = self.state.stats["tls"]
                t["handshake_failures"] += 1
                t["last_failure"] = str(e)
            if self.verbose:
                sys.stderr.write("sigv4-proxy: TLS handshake with %s:%d failed: %s\n"
                                 % (client_address[0], client_address[1], e))
            return
        conn.settimeout(None)
        with self.state.lock:
            self.state.stats["tls"]["handshakes"] += 1
        try:
            super().finish_request(conn, client_address)
        finally:
            self.shutdown_request(conn)  # the plain socket was detached by wrap_socket


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="s3rver base URL, e.g. http://127.0.0.1:4568")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--access-key", default="S3RVER")
    ap.add_argument("--secret-key", default="S3RVER")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--faults", default=None, help="initial fault settings as JSON")
    ap.add_argument("--no-skew-check", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--tls-cert", help="PEM server certificate (chain): serve https")
    ap.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = ap.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")

    srv = Server((args.listen, args.port), Handler)
    srv.upstream = urlsplit(args.upstream)
    srv.verifier = Verifier(args.access_key, args.secret_key, args.region,
                            check_skew=not args.no_skew_check)
    srv.state = State()
    srv.verbose = args.verbose
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        srv.tls = ctx
    if args.faults:
        srv.state.set_faults(json.loads(args.faults))
    print("PORT %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
