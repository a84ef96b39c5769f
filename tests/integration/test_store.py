"""Two devices on one local store: deterministic cases, secrecy, tamper,
names that must round-trip exactly, and a restart that does no work."""
import json
import os
import random
import re
import shutil
import sys
import time
import unicodedata

sys.path.insert(0, os.path.dirname(__file__))
from fstest import Failure, Skip, Workspace, check, diff_snapshots, run_tests, snapshot  # noqa: E402

EXIT_PARTIAL = 7
EXIT_HELD = 10


def pair(name):
    ws = Workspace(name)
    key = ws.keyfile()
    store = ws.store()
    return ws, ws.device("a", store, key), ws.device("b", store, key)


def write(path, data, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    if mode is not None:
        os.chmod(path, mode)


def converged(a, b):
    sa, sb = snapshot(a.root), snapshot(b.root)
    check(sa == sb, "trees differ:\n" + diff_snapshots(sa, sb))
    return sa


def test_basic_operations():
    ws, a, b = pair("basic")
    write(os.path.join(a.root, "notes", "one.txt"), b"one")
    write(os.path.join(a.root, "run.sh"), b"#!/bin/sh\n", 0o755)
    os.makedirs(os.path.join(a.root, "empty", "deeper"))
    os.symlink("notes/one.txt", os.path.join(a.root, "link"))
    s = a.sync()
    check(s["files_up"] == 2, "files_up %r" % s)
    s = b.sync()
    check(s["files_down"] == 2, "files_down %r" % s)
    converged(a, b)
    # modify, rename, delete on B; A follows
    write(os.path.join(b.root, "notes", "one.txt"), b"one, edited")
    os.rename(os.path.join(b.root, "run.sh"), os.path.join(b.root, "notes", "run.sh"))
    os.rmdir(os.path.join(b.root, "empty", "deeper"))
    b.sync()
    s = a.sync()
    converged(a, b)
    check(not os.path.exists(os.path.join(a.root, "run.sh")), "rename left the old name")
    check(os.access(os.path.join(a.root, "notes", "run.sh"), os.X_OK), "exec bit lost")
    # a deleted file lands in the trash, not gone
    os.unlink(os.path.join(a.root, "notes", "one.txt"))
    a.sync()
    s = b.sync()
    check(s["deleted_local"] == 1, "deleted_local %r" % s)
    trash = os.path.join(b.root, ".foldersync.trash")
    found = [f for d, _, fs in os.walk(trash) for f in fs if f == "one.txt"]
    check(found, "deleted file not in the trash")
    converged(a, b)
    # rename a directory
    os.rename(os.path.join(a.root, "notes"), os.path.join(a.root, "renamed"))
    a.sync()
    b.sync()
    converged(a, b)
    check(os.path.exists(os.path.join(b.root, "renamed", "run.sh")), "dir rename not applied")
    ws.cleanup()


def test_conflict_keeps_both():
    ws, a, b = pair("conflict")
    f = "doc.txt"
    write(os.path.join(a.root, f), b"base")
    a.sync()
    b.sync()
    write(os.path.join(a.root, f), b"from A")
    write(os.path.join(b.root, f), b"from B")
    a.sync()
    s = b.sync()
    check(s["conflicts"] == 1, "conflicts %r" % s)
    a.sync()
    tree = converged(a, b)
    contents = sorted(v[1] for v in tree.values() if v[0] == "file")
    check(contents == [b"from A", b"from B"], "contents %r" % contents)
    names = sorted(k.decode() for k in tree)
    check(names[0] == "doc (conflict b " + names[0][len("doc (conflict b "):] and names[1] == "doc.txt",
          "names %r" % names)
    check(tree[b"doc.txt"][1] == b"from A", "the first upload should win the path")
    ws.cleanup()


def test_edit_wins_over_delete():
    ws, a, b = pair("editdelete")
    write(os.path.join(a.root, "x.txt"), b"v1")
    a.sync()
    b.sync()
    os.unlink(os.path.join(a.root, "x.txt"))
    write(os.path.join(b.root, "x.txt"), b"v2 from B")
    a.sync()
    b.sync()
    a.sync()
    tree = converged(a, b)
    check(tree.get(b"x.txt", (None, None))[1] == b"v2 from B", "edit lost to a delete")
    # and the other way round: B edits first, A deletes without knowing
    write(os.path.join(b.root, "x.txt"), b"v3 from B")
    b.sync()
    os.unlink(os.path.join(a.root, "x.txt"))
    a.sync()
    b.sync()
    a.sync()
    tree = converged(a, b)
    check(tree.get(b"x.txt", (None, None))[1] == b"v3 from B", "edit lost to a delete (2)")
    ws.cleanup()


def journal_dirs(store):
    return [os.path.join(store, "journal", d) for d in os.listdir(os.path.join(store, "journal"))]


def test_concurrent_uploads_converge():
    """Both devices upload a new version of one file without seeing each
    other's record (as two daemons racing would): every device derives the
    same winner and the same conflict copy from the journal alone."""
    ws, a, b = pair("concurrent")
    write(os.path.join(a.root, "plan.txt"), b"base")
    a.sync()
    b.sync()
    write(os.path.join(a.root, "plan.txt"), b"A's plan")
    a.sync()
    # hide A's journal while B syncs: B cannot know about A's upload
    a_journal = [d for d in journal_dirs(a.store) if os.path.exists(os.path.join(d, "0000000000000001"))]
    check(len(a_journal) == 1, "cannot find A's journal")
    hidden = ws.path("hidden-journal")
    os.rename(a_journal[0], hidden)
    write(os.path.join(b.root, "plan.txt"), b"B's plan")
    s = b.sync()
    check(s["files_up"] == 1 and s["conflicts"] == 0, "B should upload without conflict: %r" % s)
    os.rename(hidden, a_journal[0])
    for dev in (a, b, a, b):
        dev.sync()
    tree = converged(a, b)
    contents = sorted(v[1] for v in tree.values() if v[0] == "file")
    check(contents == [b"A's plan", b"B's plan"], "both versions must survive: %r" % tree)
    check(b"plan.txt" in tree, "the path itself is gone: %r" % sorted(tree))
    ws.cleanup()


def test_lost_journal_record_reported():
    ws, a, b = pair("rollback")
    write(os.path.join(a.root, "one.txt"), b"1")
    a.sync()
    b.sync()
    a_journal = journal_dirs(a.store)[0]
    records = sorted(os.listdir(a_journal))
    os.unlink(os.path.join(a_journal, records[-1]))
    s = b.sync()
    check(any("rolled back" in m for m in s["messages"]), "rollback not reported: %r" % s)
    ws.cleanup()


def test_never_writes_through_a_link():
    """B turns a synced directory into a link out of the folder while A edits
    a file inside it: nothing is written outside; the directory with content
    wins and the link is kept as a conflict copy."""
    ws, a, b = pair("linkparent")
    outside = ws.path("outside")
    os.makedirs(outside)
    write(os.path.join(a.root, "L", "x"), b"v1")
    a.sync()
    b.sync()
    shutil.rmtree(os.path.join(b.root, "L"))
    os.symlink(outside, os.path.join(b.root, "L"))
    b.sync()
    write(os.path.join(a.root, "L", "x"), b"v2 edited on A")
    for dev in (a, b, a, b):
        dev.sync()
    check(os.listdir(outside) == [], "written outside the folder: %r" % os.listdir(outside))
    tree = converged(a, b)
    check(tree.get(b"L/x", (None, None))[1] == b"v2 edited on A", "edit lost: %r" % tree)
    check(any(v[0] == "link" for v in tree.values()), "the link was lost: %r" % tree)
    ws.cleanup()


def test_directory_replaced_by_file():
    ws, a, b = pair("kind")
    write(os.path.join(a.root, "D", "x"), b"x")
    a.sync()
    b.sync()
    write(os.path.join(a.root, "D", "new"), b"new on A")
    shutil.rmtree(os.path.join(b.root, "D"))
    write(os.path.join(b.root, "D"), b"D is a file on B")
    for dev in (b, a, b, a):
        s = dev.sync()
    tree = converged(a, b)
    contents = sorted(v[1] for v in tree.values() if v[0] == "file")
    check(contents == [b"D is a file on B", b"new on A"], "contents %r" % tree)
    ws.cleanup()


def test_directory_replaced_by_file_alone():
    """A directory (with a subdirectory) replaced by a file, then by a
    symlink, on one device, nothing changed in it on the other: the other
    device deletes what was in it, then puts the file (link) there. No
    conflict copy: the directory's content goes away in the same sync, an
    ignored file in it with it (to the trash, as for a deleted directory)."""
    ws, a, b = pair("kind-alone")
    write(os.path.join(a.root, ".foldersyncignore"), b"*.tmp\n")
    for replacement in ("file", "link"):
        write(os.path.join(a.root, "D", "x"), b"x")
        write(os.path.join(a.root, "D", "sub", "y"), b"y")
        a.sync()
        b.sync()
        write(os.path.join(a.root, "D", "scratch.tmp"), b"ignored, only on A")
        shutil.rmtree(os.path.join(b.root, "D"))
        if replacement == "file":
            write(os.path.join(b.root, "D"), b"D is a file on B")
            want = ("file", b"D is a file on B", False)
        else:
            os.symlink("elsewhere", os.path.join(b.root, "D"))
            want = ("link", b"elsewhere", False)
        b.sync()
        s = a.sync()
        # a link is not counted as a file downloaded
        check(s["conflicts"] == 0 and s["deleted_local"] == 3
              and s["files_down"] == (1 if replacement == "file" else 0),
              "%s: summary %r" % (replacement, s))
        s = b.sync()
        check(s["files_down"] == 0 and s["files_up"] == 0 and s["conflicts"] == 0,
              "%s: summary %r" % (replacement, s))
        tree = converged(a, b)
        check(tree.get(b"D") == want and not any(p.startswith(b"D") and p != b"D" for p in tree),
              "%s: tree %r" % (replacement, tree))
        os.unlink(os.path.join(b.root, "D"))
        b.sync()
        a.sync()
    ws.cleanup()


def test_crash_after_journal_append():
    """Simulates a crash between the journal append and the index commit by
    restoring the index from before a sync: the next sync must not see a
    conflict with itself."""
    ws, a, b = pair("crash")
    write(os.path.join(a.root, "f"), b"v1")
    a.sync()
    folders = os.path.join(a.home, "data", "foldersync", "folders")
    db = [f for f in os.listdir(folders) if f.endswith(".db")][0]
    saved = {}
    for f in os.listdir(folders):
        if f.startswith(db):
            saved[f] = open(os.path.join(folders, f), "rb").read()
    write(os.path.join(a.root, "f"), b"v2")
    a.sync()
    for f in os.listdir(folders):
        if f.startswith(db) and f not in saved:
            os.unlink(os.path.join(folders, f))
    for f, data in saved.items():
        with open(os.path.join(folders, f), "wb") as fh:
            fh.write(data)
    write(os.path.join(a.root, "f"), b"v3, newer than the crash")
    s = a.sync()
    check(s["conflicts"] == 0 and s["files_up"] == 1, "summary %r" % s)
    b.sync()
    tree = converged(a, b)
    check(tree == {b"f": ("file", b"v3, newer than the crash", False)}, "tree %r" % tree)
    ws.cleanup()


def test_one_sync_per_folder_at_a_time():
    """A second sync of a folder whose lock another process holds is refused
    at once. The other process is this test holding the folder's flock: a
    real first sync is too quick (small files go into packs) to race with."""
    import fcntl
    import glob
    ws, a, b = pair("busy")
    write(os.path.join(a.root, "f"), b"x")
    a.sync()
    locks = glob.glob(os.path.join(a.home, "data", "**", "*.lock"), recursive=True)
    check(len(locks) == 1, "lock files %r" % locks)
    with open(locks[0], "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        second = a.run()
    check(second.returncode == 9 and b"another process" in second.stderr,
          "second sync: rc %d %r" % (second.returncode, second.stderr))
    write(os.path.join(a.root, "g"), b"y")
    s = a.sync()
    check(s["files_up"] == 1, "after the lock was released: %r" % s)
    ws.cleanup()


def test_mass_delete_held_back():
    ws, a, b = pair("massdelete")
    for i in range(20):
        write(os.path.join(a.root, "docs", "f%02d.txt" % i), b"%d" % i)
    a.sync()
    b.sync()
    # an emptied folder (an unmounted disk, say) must not empty the other device
    for i in range(15):
        os.unlink(os.path.join(a.root, "docs", "f%02d.txt" % i))
    s = a.sync(expect_rc=EXIT_HELD)
    check(s["held_deletes"] == 15 and s["deleted_remote"] == 0, "summary %r" % s)
    b.sync()
    check(len(os.listdir(os.path.join(b.root, "docs"))) == 20, "B lost files to held deletes")
    s = a.sync("--confirm-deletes")
    check(s["deleted_remote"] == 15, "confirmed %r" % s)
    # the receiving side guards too
    s = b.sync(expect_rc=EXIT_HELD)
    check(s["held_deletes"] == 15 and len(os.listdir(os.path.join(b.root, "docs"))) == 20, "B %r" % s)
    s = b.sync("--confirm-deletes")
    check(s["deleted_local"] == 15, "B confirmed %r" % s)
    converged(a, b)
    ws.cleanup()


def test_ignore_file_honoured():
    ws, a, b = pair("ignore")
    write(os.path.join(a.root, ".foldersyncignore"), b"*.tmp\nbuild/\n!keep.tmp\n")
    write(os.path.join(a.root, "x.tmp"), b"ignored")
    write(os.path.join(a.root, "keep.tmp"), b"kept")
    write(os.path.join(a.root, "build", "out.o"), b"ignored")
    write(os.path.join(a.root, "src", "main.c"), b"int main;")
    a.sync()
    b.sync()
    got = sorted(k.decode() for k in snapshot(b.root))
    check(got == [".foldersyncignore", "keep.tmp", "src", "src/main.c"], "B has %r" % got)
    # ignoring a synced file later stops syncing it; it is deleted nowhere
    write(os.path.join(a.root, "src", "build.log"), b"log")
    a.sync()
    b.sync()
    write(os.path.join(a.root, ".foldersyncignore"), b"*.tmp\nbuild/\n!keep.tmp\n*.log\n")
    a.sync()
    b.sync()
    check(os.path.exists(os.path.join(b.root, "src", "build.log")), "newly ignored file deleted on B")
    check(os.path.exists(os.path.join(a.root, "src", "build.log")), "newly ignored file deleted on A")
    ws.cleanup()


def test_local_disk_full():
    """A download that does not fit fails for that file only; nothing
    half-written is left and the good local copy stays."""
    ws, a, b = pair("diskfull")
    if os.geteuid() != 0:
        raise Skip("mounting a small tmpfs needs root")
    import subprocess
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", b.root]).returncode != 0:
        raise Skip("cannot mount a tmpfs here")
    try:
        write(os.path.join(a.root, "small.txt"), b"small v1")
        a.sync()
        b.sync()
        write(os.path.join(a.root, "small.txt"), b"small v2")
        write(os.path.join(a.root, "huge.bin"), random.Random(3).randbytes(3 << 20))
        a.sync()
        s = b.sync(expect_rc=EXIT_PARTIAL)
        check(s["errors"] == 1, "summary %r" % s)
        check(any("No space" in m for m in s["messages"]), "messages %r" % s["messages"])
        names = os.listdir(b.root)
        check("huge.bin" not in names and not any(n.startswith(".foldersync.tmp") for n in names),
              "half-written file left: %r" % names)
        check(open(os.path.join(b.root, "small.txt"), "rb").read() == b"small v2", "small file not synced")
    finally:
        subprocess.run(["umount", b.root])
    ws.cleanup()


def test_no_plaintext_in_store():
    ws, a, b = pair("plaintext")
    marker = b"MARKER-7f3a-PLAINTEXT"
    names = ["secret-plan.txt", "Quarterly Report.odt", "d\u00e9j\u00e0-vu.md", "deep"]
    for i, n in enumerate(names):
        write(os.path.join(a.root, "topsecretdir", n if n != "deep" else "deep/er/file.txt"),
              marker + b" %d " % i + b"text " * 2000)
    a.sync()
    needles = [marker] + [n.encode() for n in names] + [b"topsecretdir", b"file.txt"]
    for dirpath, dirnames, filenames in os.walk(a.store):
        for entry in dirnames + filenames:
            for n in needles:
                check(n not in entry.encode(), "name %r reveals %r" % (entry, n))
        for f in filenames:
            data = open(os.path.join(dirpath, f), "rb").read()
            for n in needles:
                check(n not in data, "%s holds %r" % (f, n))
    ws.cleanup()


def test_tamper_each_object():
    ws, a, b = pair("tamper")
    for i in range(4):
        write(os.path.join(a.root, "f%d.txt" % i), b"content %d " % i * 500)
    a.sync()
    objects = []
    for dirpath, _, filenames in os.walk(os.path.join(a.store, "o")):
        objects += [os.path.join(dirpath, f) for f in filenames]
    check(len(objects) == 4, "objects %r" % objects)
    rng = random.Random(7)
    for obj in objects:
        data = bytearray(open(obj, "rb").read())
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        good = open(obj, "rb").read()
        with open(obj, "wb") as fh:
            fh.write(data)
        # B has an older copy of every file; the tampered one must stay untouched
        b_dev = ws.device("b-%s" % os.path.basename(obj)[:6], a.store, a.key)
        write(os.path.join(b_dev.root, "keep.txt"), b"unrelated local file")
        s = b_dev.sync(expect_rc=EXIT_PARTIAL)
        check(s["errors"] == 1 and s["files_down"] == 3, "summary %r" % s)
        check(any("corrupt" in m for m in s["messages"]), "no corrupt message: %r" % s["messages"])
        check(len([f for f in os.listdir(b_dev.root) if f.endswith(".txt")]) == 4,
              "files: %r" % os.listdir(b_dev.root))
        check(not any(f.startswith(".foldersync.tmp") for f in os.listdir(b_dev.root)),
              "temp file left behind")
        with open(obj, "wb") as fh:
            fh.write(good)
    # a tampered object never overwrites a good local copy
    write(os.path.join(a.root, "f0.txt"), b"new version")
    a.sync()
    b.sync()
    write(os.path.join(a.root, "f1.txt"), b"newer version of f1")
    a.sync()
    newest = max(objects_now(a.store), key=os.path.getmtime)
    data = bytearray(open(newest, "rb").read())
    data[-1] ^= 0xff
    with open(newest, "wb") as fh:
        fh.write(data)
    before = open(os.path.join(b.root, "f1.txt"), "rb").read()
    b.sync(expect_rc=EXIT_PARTIAL)
    check(open(os.path.join(b.root, "f1.txt"), "rb").read() == before, "good copy overwritten")
    ws.cleanup()


def store_files(store, top):
    out = []
    for dirpath, _, filenames in os.walk(os.path.join(store, top)):
        out += [os.path.join(dirpath, f) for f in filenames]
    return out


def test_small_files_packed():
    """A sync of many small files writes them into a pack; a single edit gets
    an object of its own; a damaged member costs only its own file."""
    ws, a, b = pair("packed")
    rng = random.Random(3)
    names = []
    for i in range(40):
        rel = os.path.join("dir%d" % (i % 3), "small-%02d.txt" % i)
        write(os.path.join(a.root, rel), rng.randbytes(rng.randrange(0, 5000)))
        names.append(rel)
    write(os.path.join(a.root, "big.bin"), rng.randbytes(200 * 1024))
    s = a.sync()
    check(s["files_up"] == 41 and s["objects_written"] == 2, "summary %r" % s)
    packs, objects = store_files(a.store, "p"), store_files(a.store, "o")
    check(len(packs) == 1 and len(objects) == 1, "packs %r, objects %r" % (packs, objects))
    pack_data = open(packs[0], "rb").read()
    for n in names:
        check(os.path.basename(n).encode() not in pack_data, "the pack names %s" % n)
    s = b.sync()
    check(s["files_down"] == 41 and s["errors"] == 0, "summary %r" % s)
    converged(a, b)

    # Members are whole sealed objects back to back: damage the 6th, while
    # every member is still what its file's record names (the members' order
    # follows the uploads' and is not fixed: after an edit one is stale).
    starts = [m.start() for m in re.finditer(b"FSO1\x01", pack_data)]
    check(len(starts) == 40, "members found: %d" % len(starts))
    damaged = bytearray(pack_data)
    damaged[(starts[5] + starts[6]) // 2] ^= 0x10
    with open(packs[0], "wb") as fh:
        fh.write(damaged)
    c = ws.device("c", a.store, a.key)
    s = c.sync(expect_rc=EXIT_PARTIAL)
    check(s["errors"] == 1 and s["files_down"] == 40, "summary %r" % s)
    bad = [m for m in s["messages"] if "corrupt" in m]
    check(len(bad) == 1, "messages %r" % s["messages"])
    missing = [n for n in names + ["big.bin"] if not os.path.exists(os.path.join(c.root, n))]
    check(len(missing) == 1 and missing[0] in bad[0], "missing %r, message %r" % (missing, bad))
    check(not any(f.startswith(".foldersync.tmp") for f in os.listdir(c.root)),
          "temp file left behind")

    write(os.path.join(a.root, names[0]), b"one edit")
    s = a.sync()
    check(s["files_up"] == 1, "summary %r" % s)
    check(len(store_files(a.store, "p")) == 1 and len(store_files(a.store, "o")) == 2,
          "a single edit was packed: %r" % store_files(a.store, "p"))
    b.sync()
    converged(a, b)
    ws.cleanup()


def sync_debug(dev):
    """A sync with the engine's debug output (on stderr); -> that output."""
    import subprocess
    env = dict(dev.env(), G_MESSAGES_DEBUG="FolderSync")
    r = subprocess.run([sys.argv[1], "sync", "--json", "--path", dev.root, "--key-file", dev.key,
                        "--store", dev.store], env=env, capture_output=True)
    check(r.returncode == 0, "sync failed: %r" % r.stderr[-500:])
    json.loads(r.stdout)  # debug output stays off stdout
    return r.stderr.decode()


def test_remote_tree_kept_in_index():
    """The remote tree is derived from all records only when another device's
    records came in; our own uploads and deletions move its heads in place.
    Both sides converge either way."""
    ws, a, b = pair("heads")
    derived = "remote tree derived again"
    write(os.path.join(a.root, "one.txt"), b"one")
    sync_debug(a)
    check(derived not in sync_debug(a), "a no-change sync derived the tree")
    write(os.path.join(a.root, "two.txt"), b"two")
    write(os.path.join(a.root, "one.txt"), b"one, edited")
    check(derived not in sync_debug(a), "own uploads made the tree be derived")
    os.unlink(os.path.join(a.root, "two.txt"))
    check(derived not in sync_debug(a), "an own deletion made the tree be derived")
    check(derived not in sync_debug(a), "a no-change sync derived the tree")
    check(derived in sync_debug(b), "a new device did not derive the tree")
    converged(a, b)
    write(os.path.join(b.root, "three.txt"), b"three")
    write(os.path.join(b.root, "one.txt"), b"one, edited on b")
    sync_debug(b)
    check(derived in sync_debug(a), "another device's records did not derive the tree")
    converged(a, b)
    check(open(os.path.join(a.root, "one.txt"), "rb").read() == b"one, edited on b", "edit lost")
    # A heads table kept under an older derivation rule (its marker has no
    # "rule:" prefix) is derived again once, then kept again.
    import glob
    import sqlite3
    db = sqlite3.connect(glob.glob(os.path.join(a.home, "data", "foldersync", "folders", "*.db"))[0])
    marker = db.execute("SELECT value FROM meta WHERE key = 'heads_marker'").fetchone()[0]
    check(":" in marker, "heads marker %r has no rule" % marker)
    db.execute("UPDATE meta SET value = ? WHERE key = 'heads_marker'", (marker.split(":", 1)[1],))
    db.commit()
    db.close()
    check(derived in sync_debug(a), "a table of the old rule was not derived again")
    check(derived not in sync_debug(a), "the table was derived again twice")
    ws.cleanup()


def test_tree_order_names():
    """Names on both sides of '/' in byte order ("a", "a/z", "a b", "a.txt"),
    and an NFD name, changed on both devices: a whole sync merges the walk,
    the index and the remote tree in one order and misses none of them."""
    ws, a, b = pair("order")
    nfd = "e\u0301"
    # NFD "é" is before "f" on disk, after "z" as an NFC key.
    names = ["a/z", "a b", "a.txt", "a0", "a/b/c", nfd + "/x", nfd + "0", "ab", "f", "z"]
    for n in names:
        write(os.path.join(a.root, n), n.encode())
    a.sync()
    b.sync()
    converged(a, b)
    os.unlink(os.path.join(a.root, "a", "z"))
    os.unlink(os.path.join(a.root, "a.txt"))
    write(os.path.join(a.root, "a b"), b"edited on a")
    write(os.path.join(a.root, "a", "b", "d"), b"new on a")
    os.unlink(os.path.join(b.root, "a0"))
    write(os.path.join(b.root, "a", "y"), b"new on b")
    write(os.path.join(b.root, nfd, "x"), b"edited on b")
    sa = a.sync()
    sb = b.sync()
    check(sa["files_up"] == 2 and sa["deleted_remote"] == 2, "a: %r" % sa)
    check(sb["files_down"] == 2 and sb["deleted_local"] == 2 and sb["files_up"] == 2
          and sb["deleted_remote"] == 1, "b: %r" % sb)
    a.sync()
    final = converged(a, b)
    files = sorted(k for k, v in final.items() if v[0] == "file")
    want = sorted(n.encode() for n in ["a b", "a/b/c", "a/b/d", "a/y", nfd + "/x", nfd + "0", "ab",
                                       "f", "z"])
    check(files == want, "files %r, wanted %r" % (files, want))
    check(open(os.path.join(a.root, nfd, "x"), "rb").read() == b"edited on b", "edit lost")
    ws.cleanup()


def tree_cmp(a, b):
    """fs_path_tree_cmp(): byte order with '/' first (the index's fs_tree)."""
    ka = bytes(0 if c == 0x2F else c + 1 for c in a.encode()) if isinstance(a, str) else a
    kb = bytes(0 if c == 0x2F else c + 1 for c in b.encode()) if isinstance(b, str) else b
    return (ka > kb) - (ka < kb)


def heads_of(dev):
    """The device's kept remote tree: (path, version, deleted) rows of its index."""
    import glob
    import sqlite3
    dbs = glob.glob(os.path.join(dev.home, "data", "foldersync", "folders", "*.db"))
    check(len(dbs) == 1, "index files %r" % dbs)
    db = sqlite3.connect(dbs[0])
    db.create_collation("fs_tree", tree_cmp)
    rows = db.execute("SELECT path, version, deleted FROM heads ORDER BY path").fetchall()
    db.close()
    return rows


def test_heads_match_derived_tree():
    """The heads moved in place by our own records are what deriving the tree
    from all records gives, also where two devices made a directory of one
    name: --audit derives again and must find the same table. That directory
    is one directory, and deleting it on one device deletes it on both (the
    other device's record of it does not outlive the deletion)."""
    ws, a, b = pair("heads-derived")
    a.sync()
    b.sync()
    os.makedirs(os.path.join(a.root, "d"))
    write(os.path.join(a.root, "f-a.txt"), b"a")
    a.sync()
    # B makes "d" too without seeing A's record (a concurrent mkdir): A's
    # journal is out of sight meanwhile.
    journal = os.path.join(a.store, "journal")
    hidden = ws.path("hidden-journal")
    os.rename(journal, hidden)
    os.makedirs(os.path.join(b.root, "d"))
    b.sync()
    for dev in os.listdir(hidden):
        os.rename(os.path.join(hidden, dev), os.path.join(journal, dev))
    a.sync()
    s = b.sync()
    # "d" is there already, whichever record became its head
    check(s["dirs_created"] == 0, "summary %r" % s)
    a.sync()
    converged(a, b)
    os.rmdir(os.path.join(a.root, "d"))
    write(os.path.join(a.root, "f-a.txt"), b"edited")
    a.sync()
    a.sync()  # the heads as A keeps them after its own records
    moved = heads_of(a)
    a.sync("--audit")
    check(heads_of(a) == moved, "kept %r, derived %r" % (moved, heads_of(a)))
    b.sync()
    a.sync()
    tree = converged(a, b)
    check(b"d" not in tree and not os.path.exists(os.path.join(b.root, "d")),
          "the directory both made came back after its deletion: %r" % sorted(tree))
    check(tree.get(b"f-a.txt", (None, None))[1] == b"edited", "tree %r" % tree)
    ws.cleanup()


def twin_directory_apart(name, b_change, a_change="file"):
    """Devices A and B make a directory "d" without seeing each other's
    record; still apart, B changes its "d" (b_change: None, "file") and then
    A its own (a_change: "file", replaced by a file; "edit", replaced by a
    file, synced, then edited; "delete", replaced by a file, synced, then
    deleted); device C syncs A's file before it sees B's records. Two chains
    of records of "d" then end there. -> (ws, a, b, c), all apart no more."""
    ws, a, b = pair(name)
    c = ws.device("c", a.store, a.key)
    for dev in (a, b, c):
        dev.sync()
    journal = os.path.join(a.store, "journal")
    hidden = ws.path("hidden")
    os.makedirs(hidden)

    def move(devs, src, dst):
        for d in devs:
            os.rename(os.path.join(src, d), os.path.join(dst, d))

    os.makedirs(os.path.join(a.root, "d"))
    a.sync()
    a_journal = set(os.listdir(journal))
    move(a_journal, journal, hidden)
    os.makedirs(os.path.join(b.root, "d"))
    b.sync()
    if b_change == "file":
        os.rmdir(os.path.join(b.root, "d"))
        write(os.path.join(b.root, "d"), b"file from b")
        b.sync()
    b_journal = set(os.listdir(journal)) - a_journal
    move(b_journal, journal, hidden)
    move(a_journal, hidden, journal)
    os.rmdir(os.path.join(a.root, "d"))
    write(os.path.join(a.root, "d"), b"file from a")
    a.sync()
    c.sync()
    check(open(os.path.join(c.root, "d"), "rb").read() == b"file from a", "c: no file")
    if a_change == "edit":
        write(os.path.join(a.root, "d"), b"edited on a")
    elif a_change == "delete":
        os.unlink(os.path.join(a.root, "d"))
    move(b_journal, hidden, journal)
    a.journal_dirs = a_journal
    return ws, a, b, c


def settle(devs, rounds=3):
    for _ in range(rounds):
        for dev in devs:
            dev.sync()
    tree = converged(devs[0], devs[1])
    for dev in devs[2:]:
        converged(devs[0], dev)
    return {path: v[1] for path, v in tree.items() if v[0] == "file"}, tree


def test_twin_directory_replaced_while_apart():
    """A file whose chain lost the path "d" to the other chain (see
    twin_directory_apart()) is kept as a conflict copy beside the winner by
    the device that holds it (base_lost() in fs-engine.c), which then ends
    the lost chain with a deletion, so that chain never takes the path back
    when the other moves on, and C, which synced the same version, keeps no
    second copy. A version that A edited or deleted meanwhile ends the same
    way: the edit is kept, the deletion stands. Every file's content is in
    the tree exactly once. Version ids are random, so which chain wins
    changes from run to run: a case with B's directory runs until A's file
    lost (a third of the runs); with two files one always loses."""
    cases = [("file", "file", ["file from a"]), (None, "file", ["file from a"]),
             (None, "edit", ["edited on a"]), (None, "delete", [])]
    for b_change, a_change, from_a in cases:
        lost = False
        for attempt in range(40):
            ws, a, b, c = twin_directory_apart("twin-%s-%s-%d" % (b_change, a_change, attempt),
                                               b_change, a_change)
            files, tree = settle([a, b, c])
            wanted = sorted(x.encode() for x in from_a + (["file from b"] if b_change else []))
            what = "B %s, A %s, run %d" % (b_change, a_change, attempt)
            check(sorted(files.values()) == wanted,
                  "%s: files %r, wanted one of each of %r" % (what, files, wanted))
            check(all(path == b"d" or path.startswith(b"d (conflict ") for path in files),
                  "%s: %r" % (what, sorted(files)))
            # B deletes "d" (its directory) or its file: the lost chain of A's
            # file must not take the path back.
            if tree.get(b"d", ("",))[0] == "dir" or files.get(b"d") == b"file from b":
                lost = True
                path = os.path.join(b.root, "d")
                os.rmdir(path) if os.path.isdir(path) else os.unlink(path)
                files, tree = settle([b, a, c], rounds=2)
                check(b"d" not in tree, "%s: deleted \"d\" came back: %r" % (what, tree.get(b"d")))
            ws.cleanup()
            if lost:
                break
        check(lost, "B %s, A %s: A's file never lost the path in 40 runs" % (b_change, a_change))


def test_lost_version_retired_after_failed_sync():
    """The sync that keeps a lost version's content (download of the winner,
    conflict copy) fails before its records land: A's journal directory is
    read-only (a mode, or a read-only bind mount as root). The index
    remembers the lost version, and the next sync ends its chain, so C
    keeps no second copy and the deleted path stays deleted."""
    import subprocess
    for attempt in range(40):
        ws, a, b, c = twin_directory_apart("lost-retry-%d" % attempt, None)
        check(len(a.journal_dirs) == 1, "A's journal: %r" % a.journal_dirs)
        ro = os.path.join(a.store, "journal", list(a.journal_dirs)[0])
        if os.geteuid() != 0:  # a mode is enough
            os.chmod(ro, 0o555)
            try:
                r = a.run()
            finally:
                os.chmod(ro, 0o755)
        else:  # root writes through modes, not through a read-only mount
            if subprocess.run(["mount", "--bind", ro, ro]).returncode != 0:
                ws.cleanup()
                raise Skip("cannot bind-mount here")
            try:
                subprocess.run(["mount", "-o", "remount,ro,bind", ro], check=True)
                r = a.run()
            finally:
                subprocess.run(["umount", ro])
        if r.returncode == 0:  # A's file won: nothing for A to write
            ws.cleanup()
            continue
        check(os.path.isdir(os.path.join(a.root, "d")), "A did not take B's directory")
        files, tree = settle([a, c, b])
        check(sorted(files.values()) == [b"file from a"], "files %r" % files)
        os.rmdir(os.path.join(b.root, "d"))
        files, tree = settle([b, a, c], rounds=2)
        check(b"d" not in tree, "deleted \"d\" came back: %r" % (tree.get(b"d"),))
        ws.cleanup()
        return
    check(False, "A's file never lost the path in 40 runs")


def test_stale_lost_note_deletes_nothing():
    """A note of a lost version (lost/VERSION in the index) that no longer
    holds deletes nothing: its version is its path's head again, or a head
    elsewhere (a conflict name, say) while its path moved on, or its path is
    ignored now. The notes are forgotten and the files stay everywhere."""
    import glob
    import sqlite3
    ws, a, b = pair("stale-note")
    write(os.path.join(a.root, "head.txt"), b"the head")
    write(os.path.join(a.root, "later.log"), b"ignored later")
    write(os.path.join(a.root, "elsewhere.txt"), b"a head elsewhere")
    a.sync()
    b.sync()
    versions = {path: version for path, version, _ in heads_of(a)}
    dbs = glob.glob(os.path.join(a.home, "data", "foldersync", "folders", "*.db"))
    db = sqlite3.connect(dbs[0])
    for version_of, path in (("head.txt", "head.txt"), ("later.log", "later.log"),
                             ("elsewhere.txt", "moved-on.txt")):
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?)",
                   ("lost/" + versions[version_of], path))
    db.commit()
    write(os.path.join(a.root, ".foldersyncignore"), b"*.log\n")
    a.sync()
    notes = db.execute("SELECT key FROM meta WHERE key LIKE 'lost/%'").fetchall()
    db.close()
    check(notes == [], "notes left: %r" % notes)
    b.sync()
    for dev in (a, b):
        check(sorted(os.listdir(dev.root)) == [".foldersyncignore", "elsewhere.txt", "head.txt",
                                               "later.log"],
              "%s: %r" % (dev.name, os.listdir(dev.root)))
    check(open(os.path.join(b.root, "later.log"), "rb").read() == b"ignored later", "b: later.log")
    ws.cleanup()


def objects_now(store):
    out = []
    for dirpath, _, filenames in os.walk(os.path.join(store, "o")):
        out += [os.path.join(dirpath, f) for f in filenames]
    return out


def test_names_round_trip():
    ws, a, b = pair("names")
    nfc = unicodedata.normalize("NFC", "Caf\u00e9 cr\u00e8me.txt")
    nfd = unicodedata.normalize("NFD", "na\u00efve r\u00e9sum\u00e9.txt")
    long_name = "L" * 251 + ".txt"
    deep = os.path.join(*["d%02d" % i for i in range(40)])
    big = random.Random(1).randbytes(50 * 1024 * 1024)
    files = {
        "with spaces in it.txt": b"spaces",
        nfc: b"nfc",
        nfd: b"nfd",
        "emoji \U0001F600\U0001F3B8.txt": b"emoji",
        long_name: b"long",
        os.path.join(deep, "bottom.txt"): b"deep",
        "empty": b"",
        "big.bin": big,
        "semi;colon & [brackets] #hash %percent 'quote'.txt": b"odd",
    }
    for name, data in files.items():
        write(os.path.join(a.root, name), data)
    os.makedirs(os.path.join(a.root, "empty dir", "nested empty"))
    a.sync()
    b.sync()
    tree = converged(a, b)
    for name, data in files.items():
        check(tree.get(os.fsencode(name), (None, None))[1] == data, "%r did not round-trip" % name)
    check(os.path.isdir(os.path.join(b.root, "empty dir", "nested empty")), "empty dirs lost")
    # byte-exact names: the NFD name stays NFD on B
    check(os.fsencode(nfd) in [os.fsencode(n) for n in os.listdir(b.root)], "NFD name changed")
    ws.cleanup()


def test_restart_does_no_work():
    ws, a, b = pair("restart")
    n = int(os.environ.get("FOLDERSYNC_TEST_RESTART_FILES", "10000"))
    for i in range(n):
        d = os.path.join(a.root, "d%02d" % (i % 50))
        if i < 50:
            os.makedirs(d)
        with open(os.path.join(d, "f%05d.txt" % i), "wb") as fh:
            fh.write(b"file %d\n" % i)
    t0 = time.monotonic()
    s = a.sync()
    t1 = time.monotonic()
    check(s["files_up"] == n and s["files_hashed"] == n, "first sync %r" % s)
    s = a.sync()
    t2 = time.monotonic()
    print("# %d files: first sync %.1f s, second sync %.2f s" % (n, t1 - t0, t2 - t1))
    check(s["files_hashed"] == 0, "restart hashed %d files" % s["files_hashed"])
    check(s["objects_read"] == 0 and s["records_read"] == 0, "restart read %r" % s)
    check(s["files_up"] == 0 and s["files_down"] == 0 and s["records_written"] == 0, "restart did work: %r" % s)
    # one changed file: exactly one hashed, one uploaded
    with open(os.path.join(a.root, "d07", "f00007.txt"), "ab") as fh:
        fh.write(b"more\n")
    s = a.sync()
    check(s["files_hashed"] == 1 and s["files_up"] == 1, "one edit %r" % s)
    ws.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([test_basic_operations, test_conflict_keeps_both, test_edit_wins_over_delete,
                        test_concurrent_uploads_converge, test_lost_journal_record_reported,
                        test_never_writes_through_a_link, test_directory_replaced_by_file,
                        test_directory_replaced_by_file_alone,
                        test_crash_after_journal_append, test_one_sync_per_folder_at_a_time,
                        test_mass_delete_held_back, test_ignore_file_honoured,
                        test_local_disk_full,
                        test_no_plaintext_in_store, test_tamper_each_object, test_names_round_trip,
                        test_restart_does_no_work, test_small_files_packed,
                        test_remote_tree_kept_in_index, test_tree_order_names,
                        test_heads_match_derived_tree,
                        test_twin_directory_replaced_while_apart,
                        test_lost_version_retired_after_failed_sync,
                        test_stale_lost_note_deletes_nothing]))
