"""Bad input gets a one-line error, a documented exit code, and changes nothing."""
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from fstest import FOLDERSYNC, Workspace, check, run_tests, snapshot  # noqa: E402

EXIT_USAGE, EXIT_KEY_FILE, EXIT_WRONG_KEY, EXIT_STORE, EXIT_FOLDER, EXIT_INDEX = 2, 3, 4, 5, 6, 8


def one_line_error(proc, code, *needles):
    err = proc.stderr.decode()
    check(proc.returncode == code, "exit %d, expected %d; stderr: %s" % (proc.returncode, code, err))
    lines = [l for l in err.splitlines() if l.strip()]
    check(len(lines) >= 1 and lines[0].startswith("foldersync: "), "no error line: %r" % err)
    for n in needles:
        check(n in err, "%r not in %r" % (n, err))


def setup(name):
    ws = Workspace(name)
    key = ws.keyfile()
    dev = ws.device("a", ws.store(), key)
    return ws, dev


def write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)


def test_keygen_format():
    out = subprocess.run([FOLDERSYNC, "keygen"], check=True, capture_output=True).stdout.decode()
    check(len(out.strip()) == 64 and all(c in "0123456789abcdef" for c in out.strip()), out)
    out2 = subprocess.run([FOLDERSYNC, "keygen"], check=True, capture_output=True).stdout.decode()
    check(out != out2, "two keys are equal")


def test_usage_errors():
    ws, dev = setup("usage")
    proc = subprocess.run([FOLDERSYNC, "sync", "--key-file", dev.key], env=dev.env(), capture_output=True)
    one_line_error(proc, EXIT_USAGE, "--path")
    proc = subprocess.run([FOLDERSYNC, "frobnicate"], capture_output=True)
    check(proc.returncode == EXIT_USAGE, "unknown verb exit %d" % proc.returncode)
    # a device name goes into conflict copies' names: no '/', no parentheses
    proc = dev.run("--device-name", "bad)name")
    one_line_error(proc, EXIT_USAGE, "device name")
    ws.cleanup()


def test_key_file_errors():
    ws, dev = setup("keys")
    cases = {
        "missing": None,
        "short": b"abcd\n",
        "nonhex": b"z" * 64 + b"\n",
        "long": b"a" * 66 + b"\n",
    }
    for name, data in cases.items():
        path = ws.path(name + ".key")
        if data is not None:
            write(path, data)
        proc = dev.run(key=path)
        one_line_error(proc, EXIT_KEY_FILE, path)
    readable = ws.path("readable.key")
    write(readable, open(dev.key, "rb").read(), 0o644)
    proc = dev.run(key=readable)
    one_line_error(proc, EXIT_KEY_FILE, "chmod 600")
    check(open(dev.key).read().strip() not in proc.stderr.decode(), "key printed")
    check(os.listdir(dev.store) == [], "store touched by a bad key file")
    ws.cleanup()


def test_folder_errors():
    ws, dev = setup("folder")
    proc = dev.run(path=ws.path("nope"))
    one_line_error(proc, EXIT_FOLDER, "does not exist")
    afile = ws.path("afile")
    write(afile, b"x")
    proc = dev.run(path=afile)
    one_line_error(proc, EXIT_FOLDER)
    ws.cleanup()


def test_store_errors():
    ws, dev = setup("store")
    proc = dev.run(store=ws.path("no-such-store"))
    one_line_error(proc, EXIT_STORE, "no-such-store")
    other = ws.store("not-a-store")
    write(os.path.join(other, "holiday.jpg"), b"photo")
    write(os.path.join(dev.root, "a.txt"), b"hello")
    proc = dev.run(store=other)
    one_line_error(proc, EXIT_STORE, "not a FolderSync store")
    check(sorted(os.listdir(other)) == ["holiday.jpg"], "a foreign directory was written to")
    ws.cleanup()


def test_wrong_key():
    ws, dev = setup("wrongkey")
    write(os.path.join(dev.root, "a.txt"), b"hello")
    dev.sync()
    other = ws.device("b", dev.store, ws.keyfile("other"))
    write(os.path.join(other.root, "mine.txt"), b"mine")
    os.makedirs(os.path.join(other.root, "sub"))
    before_store = sorted(os.walk(dev.store))
    before = snapshot(other.root)
    proc = other.run()
    one_line_error(proc, EXIT_WRONG_KEY, "Wrong key")
    check(snapshot(other.root) == before, "files changed on a wrong key")
    check(sorted(os.walk(dev.store)) == before_store, "store changed on a wrong key")
    check(open(other.key).read().strip() not in proc.stderr.decode(), "key printed")
    ws.cleanup()


def test_index_too_new():
    ws, dev = setup("index")
    write(os.path.join(dev.root, "a.txt"), b"hello")
    dev.sync()
    folders = os.path.join(dev.home, "data", "foldersync", "folders")
    dbs = [f for f in os.listdir(folders) if f.endswith(".db")]
    check(len(dbs) == 1, "expected one index, found %r" % dbs)
    con = sqlite3.connect(os.path.join(folders, dbs[0]))
    con.execute("PRAGMA user_version = 99")
    con.close()
    proc = dev.run()
    one_line_error(proc, EXIT_INDEX, "99")
    ws.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([test_keygen_format, test_usage_errors, test_key_file_errors,
                        test_folder_errors, test_store_errors, test_wrong_key, test_index_too_new]))
