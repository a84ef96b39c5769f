"""Runs every example line of docs/dbus.md against a real daemon on a
private bus, so the documentation cannot drift from the API."""
import os
import re
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from daemon import DaemonDevice  # noqa: E402
from fstest import Workspace, check, run_tests  # noqa: E402

DOC = os.path.join(os.environ.get("FOLDERSYNC_DOCS_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "docs")),
                   "dbus.md")


def example_lines():
    text = open(DOC).read()
    block = re.search(r"```sh\n(.*?)```", text, re.S).group(1)
    return [l for l in block.splitlines() if l.strip()]


def test_examples_run():
    ws = Workspace("dbusdoc")
    key = ws.keyfile()
    dev = DaemonDevice(ws, "A", ws.store(), key)
    try:
        dev.start()
        env = dev.env()
        values = {"DIR": dev.root, "STORE": dev.store, "KEY": key, "FOLDER": ""}
        lines = example_lines()
        check(len(lines) >= 10, "too few examples in docs/dbus.md")
        for line in lines:
            cmd = line
            for name, value in values.items():
                cmd = cmd.replace("$" + name, value)
            # busctl has no private-bus flag like gdbus; point it at ours.
            cmd = cmd.replace("busctl --user", "busctl --address=" + shlex.quote(env["DBUS_SESSION_BUS_ADDRESS"]))
            proc = subprocess.run(cmd, shell=True, env=env, capture_output=True)
            check(proc.returncode == 0, "example failed (%d): %s\n%s" % (proc.returncode, line,
                                                                        proc.stderr.decode()[-500:]))
            if "AddFolder" in line:
                values["FOLDER"] = re.search(rb"'(/org/toolbox/FolderSync/folder/[^']+)'", proc.stdout).group(1).decode()
        print("# %d examples of docs/dbus.md ran" % len(lines))
    finally:
        dev.stop()
        ws.cleanup()


if __name__ == "__main__":
    sys.exit(run_tests([test_examples_run]))
