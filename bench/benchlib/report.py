"""Judges the measurements against issue #6's targets and writes the
markdown: the table (workload, FolderSync, rclone, ratio, of limit, target,
result), the limit lines, the machine. MB = 10^6 bytes, MiB = 2^20."""
import os
import platform
import subprocess

GROSS = 5.0  # --smoke fails when FolderSync is this many times worse than rclone
# ... except W5, which already is 2.5-4x rclone's time (sequential journal
# reads, 2026-11): a regression is gross when it doubles that.
GROSS_W5 = 8.0


def _fmt_s(t):
    return "%.2f s" % t if t < 100 else "%.0f s" % t


def _x(r, what=""):
    """A ratio: two decimals, or two significant digits below 0.1."""
    return ("%.2f×" % r if r >= 0.1 else "%.2g×" % r) + (" " + what if what else "")


def _pct(x):
    return "%.0f%%" % (100 * x)


class Row:
    def __init__(self, name, fs, rc, ratio, of_limit, target, ok, worse, gross=GROSS):
        self.name, self.fs, self.rc, self.ratio = name, fs, rc, ratio
        self.of_limit, self.target, self.ok = of_limit, target, ok
        self.worse = worse  # how many times worse than rclone (for --smoke), or None
        self.gross = gross


def rows(m, scale, cpus):
    """The table's rows; a workload that did not run (--only) is left out."""
    out = []
    for section in (_w1, _w2, _w3_w4, _w5, _w6):
        try:
            out += section(m, scale, cpus)
        except KeyError:
            pass
    return out


def _w1(m, scale, cpus):
    out = []
    n1 = scale["small_files"]
    rate = n1 / m["w1_fs"]
    frac = rate / m["small_put_per_s"]
    ratio = m["w1_fs"] / m["w1_rc"]
    out.append(Row("W1 upload %d × %d KiB text" % (n1, scale["small_size"] >> 10),
                   "%s (%.0f files/s)" % (_fmt_s(m["w1_fs"]), rate),
                   "%s (%.0f files/s)" % (_fmt_s(m["w1_rc"]), n1 / m["w1_rc"]),
                   _x(ratio, "time"), "%s of %.0f PUT/s" % (_pct(frac), m["small_put_per_s"]),
                   "≤ 0.5× time, ≥ 80% of limit", ratio <= 0.5 and frac >= 0.8, ratio))
    return out


def get_ceiling(m):
    """The server's GET ceiling: the better of one GET and four ranged GETs
    at once (curl, same run)."""
    return max(m.get("get_big_mb_s", 0), m.get("get_big_parallel_mb_s", 0))


def _w2(m, scale, cpus):
    """W2; the download is also W5's big-file part."""
    out = []
    left = max(1, cpus - 1)  # s3rver takes a core
    mib = scale["big_size"] >> 20
    pipe = m["pipe"]
    for direction, op, ceiling in (("up", "seal", m["put_big_mb_s"]),
                                   ("down", "open", get_ceiling(m))):
        for kind in ("text", "random"):
            fs = m["w2_%s_fs_%s" % (kind, direction)]["mb_s"]
            rc = m["w2_%s_rc_%s" % (kind, direction)]["mb_s"]
            pipe_limit = pipe[(kind, op, 1)] * left
            lower = min(pipe_limit, ceiling)
            limit_name = ("pipeline" if pipe_limit <= ceiling
                          else ("PUT" if direction == "up" else "GET"))
            if kind == "random":
                need = 0.75 * m["put_big_mb_s"]
                tdesc = "≥ 2× rclone, ≥ 75%% of PUT ceiling (%.0f)" % need
            else:
                need = 0.8 * lower
                tdesc = "≥ 2× rclone, ≥ 80%% of %s×%d limit (%.0f)" % (op, left, need)
            out.append(Row("W2%s %s %s %d MiB" % ("/W5" if direction == "down" else "",
                                                  "upload" if direction == "up" else "download",
                                                  kind, mib),
                           "%.0f MB/s" % fs, "%.0f MB/s" % rc, _x(fs / rc, "speed"),
                           "%s of %.0f (%s)" % (_pct(fs / lower), lower, limit_name),
                           tdesc, fs >= 2 * rc and fs >= need, rc / fs))

    return out


def _w3_w4(m, scale, cpus):
    out = []
    nt = scale["tree_files"]
    ratio = m["w3_fs"] / m["w3_rc"]
    out.append(Row("W3 restart, %d unchanged files" % nt, _fmt_s(m["w3_fs"]),
                   _fmt_s(m["w3_rc"]) + " (no-change sync)", _x(ratio, "time"), "",
                   "≤ 0.5 s and ≤ 0.1× time", m["w3_fs"] <= 0.5 and ratio <= 0.1, ratio))
    limit = m["batch_interval"] + 0.5
    if m["w4_fs"] is None:
        out.append(Row("W4 1 KiB edit in %d files" % nt,
                       "not measured: watcher %s" % m.get("watch_mode"),
                       _fmt_s(m["w4_rc"]) + " (next run)", "", "",
                       "≤ batch interval + 0.5 s = %.1f s" % limit, "SKIP", None))
    else:
        out.append(Row("W4 1 KiB edit in %d files" % nt, _fmt_s(m["w4_fs"]),
                       _fmt_s(m["w4_rc"]) + " (next run)",
                       _x(m["w4_fs"] / m["w4_rc"], "time"), "",
                       "≤ batch interval + 0.5 s = %.1f s" % limit, m["w4_fs"] <= limit,
                       m["w4_fs"] / m["w4_rc"]))
    return out


def _w5(m, scale, cpus):
    """W5's small files; the big ones are the W2 download lines."""
    n1 = scale["small_files"]
    out = []
    rate = n1 / m["w5_fs"]
    out.append(Row("W5 2nd device downloads W1", "%s (%.0f files/s)" % (_fmt_s(m["w5_fs"]), rate),
                   _fmt_s(m["w5_rc"]), _x(m["w5_fs"] / m["w5_rc"], "time"),
                   "%s of %.0f GET/s" % (_pct(rate / m["small_get_per_s"]), m["small_get_per_s"]),
                   "none (info)", None, m["w5_fs"] / m["w5_rc"], gross=GROSS_W5))

    return out


def _w6(m, scale, cpus):
    out = []
    nt = scale["tree_files"]
    if "w3_fs_rss" in m:
        out.append(Row("W6 peak RSS, W3 (%d files)" % nt, "%.1f MiB" % m["w3_fs_rss"],
                       "%.1f MiB" % m["w3_rc_rss"], _x(m["w3_fs_rss"] / m["w3_rc_rss"]),
                       "", "≤ 24 MiB", m["w3_fs_rss"] <= 24, m["w3_fs_rss"] / m["w3_rc_rss"]))
    if "w2_random_fs_up" not in m:
        return out
    w2 = [(k, d) for k in ("text", "random") for d in ("up", "down")]
    fs_rss = max(m["w2_%s_fs_%s" % kd]["rss"] for kd in w2)
    rc_rss = max(m["w2_%s_rc_%s" % kd]["rss"] for kd in w2)
    out.append(Row("W6 peak RSS, W2 (largest of 4)", "%.1f MiB" % fs_rss, "%.1f MiB" % rc_rss,
                   _x(fs_rss / rc_rss), "", "none (info)", None, fs_rss / rc_rss))
    gib = scale["big_size"] / float(1 << 30)
    for direction in ("up", "down"):
        for kind in ("text", "random"):
            fs = m["w2_%s_fs_%s" % (kind, direction)]["cpu"] / gib
            rc = m["w2_%s_rc_%s" % (kind, direction)]["cpu"] / gib
            out.append(Row("W6 CPU s/GiB, W2 %s %s" % (direction, kind), "%.2f" % fs, "%.2f" % rc,
                           _x(fs / rc), "", "≤ 0.5× rclone", fs <= 0.5 * rc, fs / rc))
    return out


def download_budget(m, kind, cpus):
    """The fastest download of @kind data the cores allow, in MB/s: s3rver's
    CPU per GiB served and curl's per GiB received (four ranged GETs), plus
    opening on one core (limit line (a)), share @cpus cores. None if not
    measured. Writing the file is left out, so the true bound is lower."""
    pipe = m.get("pipe", {})
    if m.get("get_server_cpu_gib") is None or (kind, "open", 1) not in pipe:
        return None
    open_gib = (1 << 30) / (pipe[(kind, "open", 1)] * 1e6)
    per_gib = m["get_server_cpu_gib"] + m["get_curl_cpu_gib"] + open_gib
    return cpus / per_gib * (1 << 30) / 1e6


def out_of_reach(m, scale, cpus):
    """Targets this run's own limit lines put out of reach, with the
    arithmetic: a line listed here cannot PASS on this machine and server."""
    out = []
    steps = m.get("steps", {})
    gib = scale["big_size"] / float(1 << 30)
    for kind in ("text", "random"):
        key = "w2_%s_rc_down" % kind
        if key not in m or "get_big_mb_s" not in m:
            continue
        need = 2 * m[key]["mb_s"]
        budget = download_budget(m, kind, cpus)
        if need > get_ceiling(m):
            out.append("- W2/W5 download %s ≥ 2× rclone: that is %.0f MB/s, above the server's "
                       "own GET ceiling of %.0f MB/s (curl, one GET or four ranged GETs at "
                       "once, same run)." % (kind, need, get_ceiling(m)))
        elif budget is not None and need > budget:
            out.append("- W2/W5 download %s ≥ 2× rclone: that is %.0f MB/s, but serving (s3rver "
                       "%.2f CPU s/GiB), receiving (curl %.2f; both as 4 ranged GETs, the "
                       "cheapest form measured) and opening the data (one core) allow at most "
                       "%.0f MB/s on %d cores, before the file is written."
                       % (kind, need, m["get_server_cpu_gib"], m["get_curl_cpu_gib"], budget,
                          cpus))
    pipe = m.get("pipe", {})
    for direction, op, what in (("up", "seal", "sealing alone (SHA-256 + igzip level 2, "
                                 "the fastest zlib-format encoder in Debian 12, + AES-GCM)"),
                                ("down", "open", "opening alone (AES-GCM + libdeflate inflate)")):
        key = "w2_text_rc_%s" % direction
        if key not in m or ("text", op, 1) not in pipe:
            continue
        floor = (1 << 30) / (pipe[("text", op, 1)] * 1e6)
        half = 0.5 * m[key]["cpu"] / gib
        if floor > half:
            out.append("- W6 CPU s/GiB, W2 %s text ≤ 0.5× rclone: that is %.2f s/GiB, but %s "
                       "costs %.2f s/GiB (limit line (a), one core; rclone does not compress)."
                       % (direction, half, what, floor))
    return out


def table(rs):
    lines = ["| workload | FolderSync | rclone | ratio | of lower limit | target | result |",
             "|---|---|---|---|---|---|---|"]
    for r in rs:
        res = ("info" if r.ok is None else r.ok if isinstance(r.ok, str)
               else ("PASS" if r.ok else "FAIL"))
        lines.append("| %s | %s | %s | %s | %s | %s | %s |"
                     % (r.name, r.fs, r.rc, r.ratio, r.of_limit or "", r.target, res))
    return "\n".join(lines)


def limits_table(m, cpus):
    pipe, steps = m.get("pipe", {}), m.get("steps", {})
    lines = ["| limit line | text | random |", "|---|---|---|"]
    for op, label in (("seal", "(a) seal: SHA-256 + igzip-2 + AES-GCM"),
                      ("open", "(a) open: AES-GCM + libdeflate inflate"),
                      ("seal-libdeflate", "(a) seal with libdeflate level 1 (before igzip)"),
                      ("seal-zlib", "(a) seal with zlib level 1 (before libdeflate)"),
                      ("open-zlib", "(a) open with zlib inflate (before libdeflate)"),
                      ("seal-plugin", "(a) seal through the plugin (FsSealStream + SHA-256)"),
                      ("open-plugin", "(a) open through the plugin (FsOpenStream)")):
        for t in (1, cpus):
            if ("text", op, t) in pipe:
                lines.append("| %s, %d core%s | %.0f MB/s | %.0f MB/s |"
                             % (label, t, "s" if t > 1 else "", pipe[("text", op, t)],
                                pipe[("random", op, t)]))
    for step, label in (("sha256", "SHA-256"), ("zlib1", "zlib level 1"),
                        ("libdeflate1", "libdeflate level 1"), ("igzip2", "igzip level 2"),
                        ("aes256gcm", "AES-256-GCM"),
                        ("inflate", "libdeflate inflate (stored form)"),
                        ("inflate-zlib", "zlib inflate (stored form)")):
        if ("text", step) in steps:
            lines.append("| (a) step alone: %s, 1 core | %.0f MB/s | %.0f MB/s |"
                         % (label, steps[("text", step)], steps[("random", step)]))
    for key, fmt in (("put_big_mb_s", "| (b) curl: one 256 MiB PUT | | %.0f MB/s |"),
                     ("get_big_mb_s", "| (b) curl: one 256 MiB GET | | %.0f MB/s |"),
                     ("get_big_parallel_mb_s",
                      "| (b) curl: the 256 MiB object as 4 ranged GETs at once | | %.0f MB/s |"),
                     ("small_put_per_s", "| (b) curl: 4 KiB PUTs over 4 connections | %.0f PUT/s | |"),
                     ("small_get_per_s", "| (b) curl: 4 KiB GETs over 4 connections | %.0f GET/s | |")):
        if key in m:
            lines.append(fmt % m[key])
    return "\n".join(lines)


def details(m, scale, cpus):
    nt = scale["tree_files"]
    out = []
    budgets = [download_budget(m, k, cpus) for k in ("text", "random")]
    if None not in budgets:
        out.append("- Downloads on %d cores: s3rver spends %.2f CPU s per GiB served, curl %.2f "
                   "per GiB received (4 ranged GETs, the cheapest form measured); with opening, "
                   "that allows at most %.0f / %.0f MB/s (text, random), before writing the file."
                   % (cpus, m["get_server_cpu_gib"], m["get_curl_cpu_gib"], budgets[0],
                      budgets[1]))
    if "w1_fs" in m:
        out.append("- W1 FolderSync made %s storage requests for %d files; W5 %s."
                   % (m.get("w1_fs_requests"), scale["small_files"], m.get("w5_fs_requests")))
    if "w3_rc_setup" in m:
        out.append("- W3 set-up (initial upload of %d files, both at once): FolderSync daemon %.1f s, "
                   "rclone (16 transfers) %.1f s."
                   % (nt, m["w3_fs_setup"], m["w3_rc_setup"]))
        out.append("- W3 FolderSync restarts (first, second = reported): %s s; daemon CPU by idle "
                   "%.2f s; peak RSS over the daemon's life (incl. W4) %.1f MiB."
                   % (" / ".join("%.2f" % t for t in m["w3_fs_runs"]), m.get("w3_fs_cpu") or 0,
                      m.get("w3_fs_rss_life") or 0))
    for kind in ("text", "random"):
        for d in ("up", "down"):
            if "w2_%s_fs_%s" % (kind, d) not in m:
                continue
            f, r = m["w2_%s_fs_%s" % (kind, d)], m["w2_%s_rc_%s" % (kind, d)]
            out.append("- W2 %s %s: FolderSync %.2f s, %.2f CPU s, %.1f MiB (runs: %s MB/s); "
                       "rclone %.2f s, %.2f CPU s, %.1f MiB (runs: %s MB/s)."
                       % (kind, d, f["wall"], f["cpu"], f["rss"], _runs(f), r["wall"], r["cpu"],
                          r["rss"], _runs(r)))
    return "\n".join(out)


def _runs(line):
    return ", ".join("%.0f" % v for v in line.get("runs_mb_s", [line["mb_s"]]))


def gross(rs):
    """The lines --smoke fails on: FolderSync GROSS times worse than rclone."""
    return [r for r in rs if r.worse is not None and r.worse > r.gross]


def _cmd(args):
    try:
        return subprocess.run(args, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def machine(versions, load_before, load_after):
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/cpuinfo") as f:
            flags = next((l for l in f if l.startswith("flags")), "").split()
    except OSError:
        flags = []
    accel = ", ".join(x for x, f in (("AES-NI", "aes"), ("SHA-NI", "sha_ni"), ("AVX2", "avx2"))
                      if f in flags) or "none"
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / float(1 << 30)
    lines = [
        "- nproc: %d; CPU: %s (%s); memory %.0f GiB" % (os.cpu_count(), model, accel, mem),
        "- kernel: %s %s; %s" % (platform.system(), platform.release(), _cmd(["sh", "-c",
                                 ". /etc/os-release && echo $PRETTY_NAME"])),
        "- load average before / after: %s / %s" % (load_before, load_after),
    ]
    lines += ["- %s: %s" % (k, v) for k, v in versions]
    return "\n".join(lines)
