"""Workloads W1-W6 of issue #6 and the limit lines, each run with FolderSync
and rclone on the same data against the same server. Every function fills
ctx.m (the measurements) and checks the transferred data."""
import os
import random
import shutil
import threading
import time

from . import datasets, limits, proc, verify
from .foldersync import CliDevice, Daemon

MiB = 1 << 20
TREE_DIRS = 20


class Context:
    def __init__(self, work, server, binaries, rclone, scale, log, seed=1):
        self.work = work
        self.server = server
        self.bin = binaries
        self.rclone = rclone
        self.scale = scale  # small_files, small_size, big_size, tree_files, pipe_seconds
        self.log = log
        self.seed = seed
        self.m = {}
        self.key = os.path.join(work, "folder.key")
        self.cpus = os.cpu_count() or 1

    def path(self, *parts):
        return os.path.join(self.work, *parts)

    def device(self, name, prefix):
        return CliDevice(self.bin, self.path("homes", name), self.server, self.key, prefix, name)


def limits_server(ctx):
    """(b): the server's ceiling with curl, on the same data."""
    s = ctx.scale
    big = datasets.big_file("random", ctx.seed, s["big_size"])
    t, size = limits.big_put(ctx.server, big, "limits/big", s["repeat"])
    ctx.m["put_big_mb_s"] = size / t / 1e6
    ctx.m["get_big_mb_s"] = size / limits.big_get(ctx.server, "limits/big", s["repeat"]) / 1e6
    wall, server_cpu, curl_cpu = limits.parallel_get(ctx.server, "limits/big", size, 4,
                                                     s["repeat"])
    ctx.m["get_big_parallel_mb_s"] = size / wall / 1e6
    # What serving and receiving a GiB costs in CPU (both share the cores).
    if server_cpu is not None:
        ctx.m["get_server_cpu_gib"] = server_cpu / (size / float(1 << 30))
    ctx.m["get_curl_cpu_gib"] = curl_cpu / (size / float(1 << 30))
    src = ctx.path("data", "small")
    files = [os.path.join(src, p) for p in ctx.small_paths]
    t, n = limits.small_puts(ctx.server, files, "limits/small", 4, ctx.work)
    ctx.m["small_put_per_s"] = n / t
    ctx.log("limit (b): PUT 256 MiB %.0f MB/s, GET %.0f MB/s (4 ranges at once: %.0f), "
            "%d small PUTs %.0f/s"
            % (ctx.m["put_big_mb_s"], ctx.m["get_big_mb_s"], ctx.m["get_big_parallel_mb_s"], n,
               ctx.m["small_put_per_s"]))


def limits_pipeline(ctx):
    """(a): the per-chunk pipeline alone, on the W2 data."""
    s = ctx.scale
    files = [(k, datasets.big_file(k, ctx.seed, s["big_size"])) for k in ("text", "random")]
    pipe, steps, info = limits.pipeline(ctx.bin["pipeline-bench"], files, s["pipe_seconds"])
    ctx.m["pipe"], ctx.m["steps"], ctx.m["pipe_info"] = pipe, steps, info
    ctx.log("limit (a): seal text %.0f MB/s (1 core), random %.0f; open text %.0f, random %.0f"
            % (pipe[("text", "seal", 1)], pipe[("random", "seal", 1)],
               pipe[("text", "open", 1)], pipe[("random", "open", 1)]))


def prepare_small(ctx):
    src = ctx.path("data", "small")
    ctx.small_paths = datasets.write_small_files(src, ctx.seed, ctx.scale["small_files"],
                                                 ctx.scale["small_size"])
    ctx.small_hashes = verify.tree_hashes(src)


def w1_w5(ctx):
    """W1: initial upload of the small files; W5: a fresh second device
    downloads them. FolderSync `sync` vs `rclone sync` to enc:."""
    src = ctx.path("data", "small")
    n = len(ctx.small_paths)
    r, summary = ctx.device("w1-a", "fs-w1").sync(src)
    if summary["files_up"] != n:
        raise verify.Mismatch("W1: FolderSync uploaded %d of %d files" % (summary["files_up"], n))
    ctx.m["w1_fs"], ctx.m["w1_fs_requests"] = r.wall, summary.get("storage_requests")
    ctx.m["w1_rc"] = ctx.rclone.sync(src, "enc:w1").wall
    ctx.log("W1 upload %d files: FolderSync %.2f s (%s requests), rclone %.2f s"
            % (n, r.wall, summary.get("storage_requests"), ctx.m["w1_rc"]))

    down = ctx.path("w5-fs")
    r, summary = ctx.device("w5-b", "fs-w1").sync(down)
    verify.same_tree(ctx.small_hashes, down, "W5 FolderSync")
    ctx.m["w5_fs"], ctx.m["w5_fs_requests"] = r.wall, summary.get("storage_requests")
    down_rc = ctx.path("w5-rc")
    ctx.m["w5_rc"] = ctx.rclone.sync("enc:w1", down_rc).wall
    verify.same_tree(ctx.small_hashes, down_rc, "W5 rclone")
    ctx.log("W5 download %d files: FolderSync %.2f s, rclone %.2f s (both verified)"
            % (n, ctx.m["w5_fs"], ctx.m["w5_rc"]))
    # what the small GETs cost the server alone (curl), for W5's limit
    t0 = time.monotonic()
    _small_gets(ctx)
    ctx.m["small_get_per_s"] = n / (time.monotonic() - t0)


def _small_gets(ctx):
    import subprocess
    n = len(ctx.small_paths)
    procs = []
    for c in range(4):
        conf = ctx.path("curl-get-%d.conf" % c)
        with open(conf, "w") as f:
            for i in range(c, n, 4):
                f.write('url = "%s/%s/limits/small/%06d"\noutput = "/dev/null"\n'
                        % (ctx.server.endpoint, ctx.server.bucket, i))
        procs.append(subprocess.Popen(limits._curl_base(ctx.server) + ["-K", conf],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    for p in procs:
        if p.wait() != 0:
            raise proc.RunError("curl small GETs failed: %s" % p.stderr.read()[-300:])


def w2(ctx, kind):
    """W2: one big file, upload then a fresh device downloads it (also W5's
    big-file part), FolderSync then rclone. Time, CPU, peak RSS. Each of the
    four transfers runs `repeat` times (to a fresh prefix, by a fresh device,
    into an empty folder), as the curl ceilings of limit line (b) do, and
    the same statistic is kept for both tools: the best wall time, the least
    CPU, the largest peak RSS (_best())."""
    size = ctx.scale["big_size"]
    src = ctx.path("data", "big-" + kind)
    datasets.link_big(os.path.join(src, "big-%s.bin" % kind), kind, ctx.seed, size)
    expected = verify.tree_hashes(src)
    runs = {"fs_up": [], "rc_up": [], "fs_down": [], "rc_down": []}
    for n in range(ctx.scale["repeat"]):
        tag = "%s-%d" % (kind, n)
        prefix, remote = "fs-w2-" + tag, "enc:w2-" + tag
        # Each timed transfer starts with no dirty pages, so that none pays
        # for the writeback of an earlier one (limit line (b) does the same).
        os.sync()
        r, summary = ctx.device("w2-%s-a" % tag, prefix).sync(src)
        if summary["files_up"] != 1:
            raise verify.Mismatch("W2: FolderSync uploaded %d files, not 1" % summary["files_up"])
        runs["fs_up"].append(r)
        os.sync()
        runs["rc_up"].append(ctx.rclone.sync(src, remote))
        down = ctx.path("w2-%s-fs" % tag)
        os.sync()
        runs["fs_down"].append(ctx.device("w2-%s-b" % tag, prefix).sync(down)[0])
        verify.same_tree(expected, down, "W2 %s FolderSync" % kind)
        shutil.rmtree(down)
        down = ctx.path("w2-%s-rc" % tag)
        os.sync()
        runs["rc_down"].append(ctx.rclone.sync(remote, down))
        verify.same_tree(expected, down, "W2 %s rclone" % kind)
        shutil.rmtree(down)
    for k, rs in runs.items():
        ctx.m["w2_%s_%s" % (kind, k)] = _best(rs, size)
    ctx.log("W2 %s %d MiB: up FolderSync %.0f MB/s rclone %.0f MB/s; down FolderSync %.0f MB/s "
            "rclone %.0f MB/s (verified; best of %d)"
            % (kind, size // MiB, *(ctx.m["w2_%s_%s" % (kind, k)]["mb_s"]
                                    for k in ("fs_up", "rc_up", "fs_down", "rc_down")),
               ctx.scale["repeat"]))


def _best(results, size):
    """One W2 line from the runs of one transfer: best wall time, least CPU,
    largest peak RSS, and every run's MB/s (for Details)."""
    wall = min(r.wall for r in results)
    return {"wall": wall, "cpu": min(r.cpu for r in results),
            "rss": max(r.maxrss_mib for r in results), "mb_s": size / wall / 1e6,
            "runs_mb_s": [size / r.wall / 1e6 for r in results]}


def _stored_object(ctx, prefix, stem):
    """The newest s3rver file holding an object of @stem, or None."""
    d = os.path.join(ctx.server.data_dir, prefix, "o", stem[:2])
    try:
        names = [n for n in os.listdir(d)
                 if n.startswith(stem + ".") and n.endswith("._S3rver_metadata.json")]
    except FileNotFoundError:
        return None, set()
    if not names:
        return None, set(names)
    newest = max(names, key=lambda n: os.stat(os.path.join(d, n)).st_mtime_ns)
    return os.path.join(d, newest.replace("._S3rver_metadata.json", "._S3rver_object")), set(names)


def inotify_limit():
    try:
        with open("/proc/sys/fs/inotify/max_user_watches") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def _stem(ctx, path):
    r = proc.run([ctx.bin["object-cat"], ctx.key, "stem", path]).check("object-cat stem")
    return r.stdout.strip()


def _index_db(dev):
    import glob
    dbs = glob.glob(os.path.join(dev.dev.home, "data", "foldersync", "folders", "*.db"))
    if len(dbs) != 1:
        raise verify.Mismatch("expected one index of the daemon, found %r" % dbs)
    import sqlite3
    return sqlite3.connect("file:%s?mode=ro" % dbs[0], uri=True)


def _count_file_records(dev):
    """Live file records the daemon published (its index's copy of the journal)."""
    with _index_db(dev) as db:
        return db.execute("SELECT COUNT(*) FROM records WHERE kind = 1 AND deleted = 0").fetchone()[0]


def _published_object(ctx, dev, prefix, path):
    """(s3rver file, offset, length) of the newest record of @path; offset and
    length None for an object of its own."""
    with _index_db(dev) as db:
        row = db.execute("SELECT object, object_offset, object_length FROM records "
                         "WHERE path = ? AND deleted = 0 ORDER BY seq DESC LIMIT 1",
                         (path,)).fetchone()
    if row is None:
        return None, None, None
    objfile = os.path.join(ctx.server.data_dir, prefix, row[0] + "._S3rver_object")
    if row[2] is None or row[2] <= 0:
        return objfile, None, None
    return objfile, row[1], row[2]


def _open_object(ctx, objfile, offset=None, length=None):
    import subprocess
    args = [ctx.bin["object-cat"], ctx.key, "open", objfile]
    if length is not None:
        args += [str(offset), str(length)]
    r = subprocess.run(args, capture_output=True)
    if r.returncode != 0:
        raise verify.Mismatch("object-cat open %s: %s" % (objfile, r.stderr[-300:]))
    return r.stdout


def _edit(path, content):
    with open(path, "wb") as f:
        f.write(content)


def w3_w4(ctx):
    """W3: daemon restart on an unchanged tree until idle, vs a no-change
    `rclone sync`; W4: one 1 KiB edit until its object is on the server, vs
    rclone's next run; W6: the daemon's peak RSS in W3."""
    n = ctx.scale["tree_files"]
    prefix = "fs-w3"
    settings = ["--batch-interval", "500", "--max-workers", "4", "--poll-interval", "3600"]
    ctx.m["batch_interval"] = 0.5
    dev = Daemon(ctx.bin, ctx.path("daemon"), "w3", ctx.server, ctx.key, prefix, settings)
    try:
        t0 = time.monotonic()
        # 20 directories: few inotify watches (fs.inotify.max_user_watches
        # may be small, and it is shared by every process of the user).
        paths = datasets.write_small_files(dev.root, ctx.seed, n, 1024,
                                           per_dir=max(1, n // TREE_DIRS), text_offset=12345)
        ctx.log("W3: wrote %d files in %.1f s" % (n, time.monotonic() - t0))
        # Set-up (not measured): the daemon's first sync uploads the tree
        # while rclone uploads it too (more transfers, no destination check),
        # to save time: FolderSync alone does not saturate the server.
        rc_setup = {}

        def rclone_setup():
            try:
                rc_setup["result"] = ctx.rclone.run("copy", "--transfers", "16", "--checkers", "16",
                                                    "--no-check-dest", dev.root, "enc:w3")
            except proc.RunError as e:
                rc_setup["error"] = e

        rc_thread = threading.Thread(target=rclone_setup)
        dev.start()
        t0 = time.monotonic()
        rc_thread.start()
        dev.add_folder()
        st = dev.wait_idle(1, timeout=3600, poll=0.2)
        ctx.m["w3_fs_setup"] = time.monotonic() - t0
        rc_thread.join()
        if "error" in rc_setup:
            raise rc_setup["error"]
        ctx.m["w3_rc_setup"] = rc_setup["result"].wall
        published = _count_file_records(dev)
        if published != n:
            raise verify.Mismatch("W3: %d files published for %d files (%s)" % (published, n, st))
        stored = ctx.server.count_objects(prefix)
        ctx.log("W3 set-up: %d files in %d stored objects (packs, journal)" % (n, stored))
        ctx.log("W3 set-up, concurrently: the daemon uploaded %d files in %.1f s, rclone in %.1f s"
                % (n, ctx.m["w3_fs_setup"], ctx.m["w3_rc_setup"]))

        # W3: restart until idle, twice (the second is the warm one reported).
        ctx.m["w3_fs_runs"] = []
        for _ in range(2):
            dev.stop_daemon()
            os.sync()  # the set-up's writeback (s3rver's objects, the tree) is not W3's
            t0 = time.monotonic()
            dev.start()
            st = dev.wait_idle(1, timeout=600)
            t = time.monotonic() - t0
            ctx.m["w3_fs_runs"].append(t)
            ctx.m["w3_fs_rss"] = proc.vm_hwm_mib(dev.pid)
            ctx.m["w3_fs_cpu"] = proc.cpu_seconds(dev.pid)
            if st["pending_uploads"] or st["pending_downloads"] or st["files_total"]:
                raise verify.Mismatch("W3: a restart on an unchanged tree transferred files or "
                                      "did not converge: %s" % st)
        ctx.m["w3_fs"] = ctx.m["w3_fs_runs"][-1]
        ctx.log("W3 restart with %d files: %s s to idle, peak RSS %.1f MiB"
                % (n, " / ".join("%.2f" % t for t in ctx.m["w3_fs_runs"]), ctx.m["w3_fs_rss"]))

        # W4: one 1 KiB edit; until its new object is on the server. Only
        # with inotify: polling (the kernel refused watches) waits for the
        # poll interval, which is not what W4 measures.
        ctx.m["watch_mode"] = st["watch_mode"]
        edited = paths[n // 2]
        stem = _stem(ctx, edited)
        # The tree went into packs: the edit is the first object of its own.
        _, before = _stored_object(ctx, prefix, stem)
        content = random.Random(ctx.seed).randbytes(512).hex().encode()  # 1 KiB
        edited_abs = os.path.join(dev.root, edited)
        with open(edited_abs, "rb") as f:
            original = f.read()
        original_st = os.stat(edited_abs)
        syncs = dev.status()["sync_count"]
        if st["watch_mode"] == "inotify":
            time.sleep(0.3)  # let the watcher settle
            t0 = time.monotonic()
            _edit(edited_abs, content)
            while True:
                obj, names = _stored_object(ctx, prefix, stem)
                if names - before:
                    break
                if time.monotonic() - t0 > 120:
                    raise verify.Mismatch("W4: the edit of %s was not uploaded in 120 s" % edited)
                time.sleep(0.002)
            ctx.m["w4_fs"] = time.monotonic() - t0
            dev.wait_idle(syncs + 1, timeout=120)
            if _open_object(ctx, obj) != content:
                raise verify.Mismatch("W4: the stored object of %s does not hold the edit" % edited)
            ctx.log("W4 1 KiB edit: on the server after %.2f s (verified)" % ctx.m["w4_fs"])
        else:
            ctx.m["w4_fs"] = None
            ctx.log("W4 skipped for FolderSync: the watcher is %s (fs.inotify.max_user_watches = %s)"
                    % (st["watch_mode"], inotify_limit()))

        # A sample of the tree's objects must decrypt to the files.
        for p in random.Random(ctx.seed).sample([p for p in paths if p != edited], 10):
            obj, offset, length = _published_object(ctx, dev, prefix, p)
            with open(os.path.join(dev.root, p), "rb") as f:
                if obj is None or _open_object(ctx, obj, offset, length) != f.read():
                    raise verify.Mismatch("W3: the stored object of %s differs from the file" % p)
        ru = dev.stop_daemon()
        ctx.m["w3_fs_rss_life"] = ru.ru_maxrss / 1024.0
        # rclone uploaded the tree before the edit: undo it (content and mtime).
        _edit(edited_abs, original)
        os.utime(edited_abs, ns=(original_st.st_atime_ns, original_st.st_mtime_ns))
    finally:
        dev.stop()

    # rclone on the same tree (uploaded at the set-up): a no-change run, an edit.
    r = ctx.rclone.sync(dev.root, "enc:w3", expect_copied=0)
    ctx.m["w3_rc"], ctx.m["w3_rc_rss"] = r.wall, r.maxrss_mib
    content = content[::-1]
    _edit(os.path.join(dev.root, edited), content)
    ctx.m["w4_rc"] = ctx.rclone.sync(dev.root, "enc:w3", expect_copied=1).wall
    if ctx.rclone.cat("enc:w3/" + edited) != content:
        raise verify.Mismatch("W4: rclone's stored %s does not hold the edit" % edited)
    for p in random.Random(ctx.seed + 1).sample(paths, 3):
        with open(os.path.join(dev.root, p), "rb") as f:
            if ctx.rclone.cat("enc:w3/" + p) != f.read():
                raise verify.Mismatch("W3: rclone's stored %s differs from the file" % p)
    ctx.log("W3/W4 rclone: no-change %.2f s (peak RSS %.1f MiB), after the edit %.2f s (verified)"
            % (ctx.m["w3_rc"], ctx.m["w3_rc_rss"], ctx.m["w4_rc"]))
