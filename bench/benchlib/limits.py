"""The limit lines. (a) bench/pipeline-bench: the per-chunk pipeline alone
(SHA-256 + igzip level 2 in the zlib format + AES-256-GCM seal; open +
libdeflate inflate; the same with libdeflate's and zlib's encoders for
comparison) on one core and on all cores, and through the crypto-aes plugin's
own streams. (b) The server's own ceiling: plain
`curl --aws-sigv4` requests, one 256 MiB PUT (and GET, and the same object as
max_workers ranged GETs at once), and many small PUTs spread over max_workers
curl processes that each keep one connection."""
import json
import os
import subprocess
import time

from . import proc


def pipeline(binary, files, seconds):
    """-> {(data, op, threads): MB/s} and {(data, step): MB/s} and info."""
    args = [binary, "--seconds", str(seconds), "--repeat", "3", "--mib", "32", "--object-mib", "256"]
    args += ["%s=%s" % (label, path) for label, path in files]
    r = proc.run(args).check("pipeline-bench")
    pipe, steps, info = {}, {}, {}
    for line in r.stdout.splitlines():
        o = json.loads(line)
        if o["kind"] == "pipeline":
            pipe[(o["data"], o["op"], o["threads"])] = o["mb_s"]
        elif o["kind"] == "step":
            steps[(o["data"], o["step"])] = o["mb_s"]
        else:
            info = o
    return pipe, steps, info


def _curl_base(server):
    return ["curl", "-sS", "--fail", "--aws-sigv4", "aws:amz:%s:s3" % server.region,
            "--user", "%s:%s" % (server.access_key, server.secret_key),
            "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-H", "Expect:"]


def big_put(server, path, key, repeat=2):
    """Best wall time of @repeat single PUTs of @path; -> (seconds, bytes)."""
    url = "%s/%s/%s" % (server.endpoint, server.bucket, key)
    best = None
    for _ in range(repeat):
        os.sync()
        r = proc.run(_curl_base(server) + ["-o", "/dev/null", "-T", path, url]).check("curl PUT")
        best = r.wall if best is None else min(best, r.wall)
    return best, os.path.getsize(path)


def big_get(server, key, repeat=2):
    url = "%s/%s/%s" % (server.endpoint, server.bucket, key)
    best = None
    for _ in range(repeat):
        os.sync()
        r = proc.run(_curl_base(server) + ["-o", "/dev/null", url]).check("curl GET")
        best = r.wall if best is None else min(best, r.wall)
    return best


def parallel_get(server, key, size, connections, repeat=2):
    """@key (@size bytes) fetched as @connections ranged GETs at once (one
    curl each): one connection is bound by how fast s3rver feeds it, several
    are not. -> (wall, server CPU s, curl CPU s) of the fastest of @repeat."""
    url = "%s/%s/%s" % (server.endpoint, server.bucket, key)
    part = -(-size // connections)
    best = None
    for _ in range(repeat):
        os.sync()
        cpu0 = proc.cpu_seconds(server.pid)
        t0 = time.monotonic()
        procs = [subprocess.Popen(_curl_base(server) + ["-o", "/dev/null", "-r", "%d-%d"
                                                        % (i * part, min(size, (i + 1) * part) - 1),
                                                        url], stderr=subprocess.DEVNULL)
                 for i in range(connections)]
        reaped = [proc.reap(p) for p in procs]
        wall = time.monotonic() - t0
        cpu1 = proc.cpu_seconds(server.pid)
        if any(rc for rc, _ in reaped):
            raise proc.RunError("curl ranged GETs of %s failed" % key)
        run = (wall, (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None,
               sum(ru.ru_utime + ru.ru_stime for _, ru in reaped))
        best = run if best is None or run[0] < best[0] else best
    return best


def small_puts(server, files, prefix, connections, work):
    """PUTs every file of @files (absolute paths) under @prefix with
    @connections curl processes (one kept-alive connection each);
    -> (seconds, requests)."""
    configs = []
    for c in range(connections):
        conf = os.path.join(work, "curl-small-%d.conf" % c)
        with open(conf, "w") as f:
            for i in range(c, len(files), connections):
                f.write('url = "%s/%s/%s/%06d"\nupload-file = "%s"\noutput = "/dev/null"\n'
                        % (server.endpoint, server.bucket, prefix, i, files[i]))
        configs.append(conf)
    t0 = time.monotonic()
    procs = [subprocess.Popen(_curl_base(server) + ["-w", "%{http_code}\n", "-K", conf],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for conf in configs]
    outs = [p.communicate() for p in procs]
    wall = time.monotonic() - t0
    ok = sum(o[0].decode().split().count("200") for o in outs)
    if ok != len(files) or any(p.returncode for p in procs):
        raise proc.RunError("curl small PUTs: %d of %d answered 200: %s"
                            % (ok, len(files), b"".join(o[1] for o in outs)[-500:]))
    return wall, len(files)
