"""foldersync-applet end to end, headless: Xvfb, a private session bus with
a real foldersyncd, a StatusNotifierWatcher (the host side, what GNOME's
AppIndicator extension provides: a small dbus-python service, this file run
with --watcher), dunst as the notification server, and `dbus-monitor`
recording every Notify call. The applet is driven and read through what it
exports: the StatusNotifierItem's properties and its com.canonical.dbusmenu
menu (GetLayout, and Event "clicked" as a tray host sends it). Screenshots
go to FOLDERSYNC_TEST_OUTPUT_DIR."""
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time

# dbus-python and PyGObject come from Debian (python3-dbus, python3-gi), for
# Debian's interpreter; meson may have found another python3 first.
try:
    import dbus  # noqa: F401
except ImportError:
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != "/usr/bin/python3" \
            and not os.environ.get("FOLDERSYNC_APPLET_REEXEC"):
        os.environ["FOLDERSYNC_APPLET_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)

sys.path.insert(0, os.path.dirname(__file__))
from daemon import DaemonDevice, _die_with_test, wait_for  # noqa: E402
from fstest import Failure, Skip, Workspace, check, run_tests  # noqa: E402

APPLET = os.environ.get("FOLDERSYNC_APPLET", "")
OUTPUT_DIR = os.environ.get("FOLDERSYNC_TEST_OUTPUT_DIR") or os.path.join(tempfile.gettempdir(),
                                                                          "foldersync-applet-output")
SLOW = 3 if os.environ.get("FOLDERSYNC_TEST_SANITIZED") else 1
NOTIFY_INTERVAL = 4  # FOLDERSYNC_APPLET_NOTIFY_INTERVAL: the rate limit's window, shortened
WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
DBUSMENU = "com.canonical.dbusmenu"
NEEDED = ["Xvfb", "dbus-daemon", "dbus-monitor", "dunst", "dunstctl", "import", "xwininfo"]


# ---- the StatusNotifierWatcher (python3 test_applet.py --watcher ADDRESS) ----

def run_watcher(address):
    import dbus
    import dbus.mainloop.glib
    import dbus.service
    from gi.repository import GLib

    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)

    class Watcher(dbus.service.Object):
        def __init__(self):
            super().__init__(bus, "/StatusNotifierWatcher")
            self.items = []

        @dbus.service.method(WATCHER, in_signature="s", sender_keyword="sender")
        def RegisterStatusNotifierItem(self, service, sender=None):
            # an object path (libayatana-appindicator) or a bus name
            item = sender + service if service.startswith("/") else service + "/StatusNotifierItem"
            if item not in self.items:
                self.items.append(item)
            self.StatusNotifierItemRegistered(item)

        @dbus.service.method(WATCHER, in_signature="s")
        def RegisterStatusNotifierHost(self, service):
            pass

        @dbus.service.signal(WATCHER, signature="s")
        def StatusNotifierItemRegistered(self, item):
            pass

        @dbus.service.signal(WATCHER, signature="s")
        def StatusNotifierItemUnregistered(self, item):
            pass

        @dbus.service.signal(WATCHER, signature="")
        def StatusNotifierHostRegistered(self):
            pass

        def props(self):
            return {"RegisteredStatusNotifierItems": dbus.Array(self.items, signature="s"),
                    "IsStatusNotifierHostRegistered": dbus.Boolean(True),
                    "ProtocolVersion": dbus.Int32(0)}

        @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
        def Get(self, interface, name):
            return self.props()[name]

        @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
        def GetAll(self, interface):
            return self.props()

    watcher = Watcher()  # noqa: F841
    # (a BusName is released when it is garbage collected: keep them)
    names = [dbus.service.BusName("org.kde.StatusNotifierHost-%d" % os.getpid(), bus),  # noqa: F841
             dbus.service.BusName(WATCHER, bus)]
    print("ready", flush=True)
    GLib.MainLoop().run()


# ---- the desktop around the applet -------------------------------------------

class Desktop:
    """Xvfb, a watcher, dunst, a Notify recorder and the applet, on @dev's bus."""

    def __init__(self, dev, name):
        self.dev = dev
        self.name = name
        self.procs = []
        self.applet = None
        self.display = None
        self.display_fd = None
        self.bus = None
        self.item = None
        self.applet_log = os.path.join(dev.home, "applet.log")
        self.shots = os.path.join(OUTPUT_DIR, name)
        os.makedirs(self.shots, exist_ok=True)

    def env(self):
        env = self.dev.env()
        env.update({"DISPLAY": self.display, "NO_AT_BRIDGE": "1", "GDK_BACKEND": "x11",
                    "GTK_A11Y": "none", "FOLDERSYNC_APPLET_NOTIFY_INTERVAL": str(NOTIFY_INTERVAL)})
        return env

    def spawn(self, argv, log, **kw):
        fh = open(os.path.join(self.dev.home, log), "ab")
        proc = subprocess.Popen(argv, env=self.env(), stdout=kw.pop("stdout", fh), stderr=fh,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_test, **kw)
        self.procs.append(proc)
        return proc

    def start(self):
        r, w = os.pipe()
        # -noreset: the server stays as it is when its last client goes (a
        # reset also writes to the display fd again).
        xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24", "-nolisten", "tcp",
                                 "-noreset"],
                                pass_fds=[w], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(self.dev.home, "xvfb.log"), "ab"),
                                preexec_fn=_die_with_test)
        os.close(w)
        self.procs.append(xvfb)
        ready, _, _ = select.select([r], [], [], 30)
        check(ready, "Xvfb did not start")
        self.display = ":" + os.read(r, 64).decode().strip()
        self.display_fd = r  # open while Xvfb runs
        check(self.display != ":", "Xvfb did not start: %s" % self.logs("xvfb.log"))
        watcher = self.spawn([sys.executable, __file__, "--watcher", self.dev.bus_address], "watcher.log",
                             stdout=subprocess.PIPE)
        ready, _, _ = select.select([watcher.stdout], [], [], 30)
        check(ready and watcher.stdout.readline().strip() == b"ready", "the watcher did not start")
        self.spawn(["dunst"], "dunst.log")
        self.notify_log = os.path.join(self.dev.home, "notify.log")
        self.spawn(["dbus-monitor", "--address", self.dev.bus_address,
                    "type='method_call',interface='org.freedesktop.Notifications',member='Notify'",
                    "type='method_call',interface='org.freedesktop.Notifications',member='CloseNotification'"],
                   "monitor.err", stdout=open(self.notify_log, "wb"))
        try:
            wait_for(lambda: self.has_owner("org.freedesktop.Notifications"), 30, "dunst on the bus")
        except Failure as e:
            raise Failure("%s: %s" % (e, self.logs("dunst.log", "xvfb.log")))
        return self

    def connect(self):
        import dbus
        if self.bus is None:
            self.bus = dbus.bus.BusConnection(self.dev.bus_address)
        return self.bus

    def call(self, dest, path, iface, method, sig="", args=(), timeout=20):
        return self.connect().call_blocking(dest, path, iface, method, sig, args, timeout=timeout)

    def has_owner(self, name):
        return bool(self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                              "NameHasOwner", "s", (name,)))

    # -- the applet

    def start_applet(self):
        fh = open(self.applet_log, "ab")
        self.applet = subprocess.Popen([APPLET], env=self.env(), stdout=fh, stderr=fh, stdin=subprocess.DEVNULL,
                                       preexec_fn=_die_with_test)

        def registered():
            if self.applet.poll() is not None:
                raise Failure("foldersync-applet exited with %s:\n%s" % (self.applet.returncode, self.log()))
            items = self.call(WATCHER, "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties", "Get", "ss",
                              (WATCHER, "RegisteredStatusNotifierItems"))
            if items:
                self.item = str(items[-1])
            return bool(items)
        wait_for(registered, 30 * SLOW, "the applet's StatusNotifierItem")
        self.item_name, self.item_path = self.item.split("/", 1)
        self.item_path = "/" + self.item_path

    def logs(self, *names):
        text = ""
        for name in names:
            try:
                text += open(os.path.join(self.dev.home, name), "rb").read().decode(errors="replace")[-4000:]
            except OSError:
                pass
        return text

    def log(self):
        return self.logs("applet.log")

    def item_prop(self, name):
        return self.call(self.item_name, self.item_path, "org.freedesktop.DBus.Properties", "Get", "ss",
                         (ITEM, name))

    def icon(self):
        return str(self.item_prop("IconName"))

    def layout(self):
        """The menu as nested (id, label, props, children)."""
        menu = str(self.item_prop("Menu"))

        def unescape(label):
            # dbusmenu: "__" is an underscore, a single "_" marks the mnemonic
            return re.sub(r"_(.)", r"\1", label)

        def convert(node):
            ident, props, children = node
            return (int(ident), unescape(str(props.get("label", ""))), dict(props),
                    [convert(c) for c in children])
        _, root = self.call(self.item_name, menu, DBUSMENU, "GetLayout", "iias", (0, -1, []))
        return convert(root)

    def labels(self):
        """Every visible item as a path of labels: ("Notes — Paused", "Resume")."""
        out = []

        def walk(node, path):
            for child in node[3]:
                if child[2].get("visible", True) and child[2].get("type", "") != "separator":
                    out.append(path + (child[1],))
                    walk(child, path + (child[1],))
        walk(self.layout(), ())
        return out

    def find(self, *patterns):
        """The id of the item whose label path matches @patterns (regexes), or None."""
        def walk(node, depth):
            for child in node[3]:
                if not child[2].get("visible", True):
                    continue
                if re.search(patterns[depth], child[1]):
                    if depth == len(patterns) - 1:
                        return child[0]
                    found = walk(child, depth + 1)
                    if found is not None:
                        return found
            return None
        return walk(self.layout(), 0)

    def click(self, *patterns):
        import dbus
        for attempt in range(5):
            ident = self.find(*patterns)
            check(ident is not None, "no menu item %r in %r" % (patterns, self.labels()))
            menu = str(self.item_prop("Menu"))
            try:
                self.call(self.item_name, menu, DBUSMENU, "Event", "isvu", (ident, "clicked", dbus.Int32(0), 0))
                return
            except dbus.DBusException as e:
                # the menu was rebuilt between GetLayout and Event (a host
                # would show the new layout): look the item up again
                if "does not refer to a menu item" not in str(e) or attempt == 4:
                    raise
                time.sleep(0.2)

    def wait_menu(self, *patterns, timeout=30):
        wait_for(lambda: self.find(*patterns) is not None, timeout * SLOW,
                 "menu item %r (menu: %r)" % (patterns, self.labels_safe()))

    def labels_safe(self):
        try:
            return self.labels()
        except Exception as e:  # the applet may be gone
            return str(e)

    def wait_icon(self, name, timeout=30):
        wait_for(lambda: self.icon() == "foldersync-%s-symbolic" % name, timeout * SLOW,
                 "icon %s (now %s)" % (name, self.icon()))

    def quit_applet(self):
        """Quit through the menu: a clean exit, so LeakSanitizer checks it."""
        self.click("^Quit$")
        try:
            rc = self.applet.wait(timeout=30 * SLOW)
        except subprocess.TimeoutExpired:
            self.applet.kill()
            raise Failure("the applet did not quit:\n" + self.log())
        check(rc == 0, "foldersync-applet exited with %d:\n%s" % (rc, self.log()))
        self.applet = None

    # -- notifications

    def notifications(self):
        """(summary, body) of every Notify call so far, in order."""
        text = open(self.notify_log, "rb").read().decode(errors="replace")
        result = []
        for block in text.split("method call ")[1:]:
            if "member=Notify" not in block.split("\n", 1)[0]:
                continue
            strings = re.findall(r'^   string "(.*)"$', block, re.M)  # top level: app, icon, summary, body
            if len(strings) >= 4:
                result.append((strings[2], strings[3]))
        return result

    def withdrawn(self):
        """How many notifications the applet closed (CloseNotification)."""
        return open(self.notify_log, "rb").read().decode(errors="replace").count("member=CloseNotification")

    def wait_notification(self, pattern, timeout=30):
        wait_for(lambda: any(re.search(pattern, s) for s, _ in self.notifications()), timeout * SLOW,
                 "a notification %r (got %r)" % (pattern, self.notifications()))

    def screenshot(self, name):
        path = os.path.join(self.shots, name + ".png")
        subprocess.run(["import", "-display", self.display, "-window", "root", path], check=True,
                       capture_output=True, timeout=60)
        print("# screenshot: %s" % path)
        return path

    def windows(self):
        return subprocess.run(["xwininfo", "-display", self.display, "-root", "-tree"], capture_output=True,
                              timeout=30).stdout.decode(errors="replace")

    def stop(self):
        if self.applet is not None and self.applet.poll() is None:
            self.applet.terminate()
            self.applet.wait()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        if self.display_fd is not None:
            os.close(self.display_fd)
            self.display_fd = None


def session(name):
    missing = [p for p in NEEDED if shutil.which(p) is None]
    try:
        import dbus  # noqa: F401
        import gi  # noqa: F401
    except ImportError:
        missing.append("python3-dbus python3-gi")
    if missing:
        raise Skip("not installed: %s (tools/dev test installs them)" % " ".join(missing))
    ws = Workspace(name)
    store = ws.store()
    key = ws.keyfile()
    dev = DaemonDevice(ws, "A", store, key)
    desk = Desktop(dev, name)
    try:
        dev.start_bus()
        desk.start()
        dev.start_daemon()
        dev.add_folder("--batch-interval", "200", "--poll-interval", "1")
        wait_for(lambda: dev.status()["state"] == "idle", 30 * SLOW, "the folder idle")
        desk.start_applet()
    except Exception as e:
        log = desk.log()
        desk.stop()
        dev.stop()
        ws.cleanup()
        if log:
            raise Failure("%s\napplet log:\n%s" % (e, log))
        raise
    return ws, dev, desk


def teardown(ws, dev, desk):
    desk.stop()
    dev.stop()
    ws.cleanup()


def write(root, rel, data):
    with open(os.path.join(root, rel), "wb") as fh:
        fh.write(data)


# ---- the tests -----------------------------------------------------------------

def test_menu_follows_state_and_resolves_conflicts():
    ws, dev, desk = session("state")
    try:
        name = os.path.basename(dev.root)
        desk.wait_menu("^%s — Up to date$" % name)
        desk.wait_icon("idle")
        for item in ("Open folder", "Sync now", "Pause", "No conflicts", "Pair a device…"):
            check(desk.find("^%s — " % name, "^%s$" % item) is not None, "no %r in %r" % (item, desk.labels()))
        check(desk.find("^Add folder…$") is not None, desk.labels())

        # base versions everywhere, then edited on both sides while A is paused
        files = ["one.txt", "two.txt", "three.txt"]
        for f in files:
            write(dev.root, f, b"base " + f.encode())
        other = ws.device("B", dev.store, dev.key)
        wait_for(lambda: all(os.path.exists(os.path.join(other.root, f)) for f in files)
                 if other.sync() is not None else False, 30 * SLOW, "the base files on B")

        desk.click("^%s — " % name, "^Pause$")  # Folder.Stop, from the menu
        wait_for(lambda: dev.status()["state"] == "paused", 30 * SLOW, "paused")
        desk.wait_menu("^%s — Paused$" % name, "^Resume$")
        desk.wait_icon("paused")
        desk.screenshot("paused")

        for f in files:
            write(other.root, f, b"B's " + f.encode())
        other.sync()
        for f in files:
            write(dev.root, f, b"A's " + f.encode())
        desk.click("^%s — " % name, "^Resume$")
        desk.wait_menu("^%s — 3 conflicts$" % name, "^Show conflicts \\(3\\)$")
        desk.wait_icon("conflict")
        desk.wait_notification("^Conflict in “%s”$" % name)
        labels = desk.labels()
        copies = [p[2] for p in labels if len(p) == 3 and p[1] == "Show conflicts (3)"]
        check(len(copies) == 3 and all("(conflict A " in c for c in copies), "conflict copies: %r" % copies)
        for choice in ("Keep mine", "Keep theirs", "Keep both"):
            check(desk.find("^%s — " % name, "^Show conflicts", re.escape(copies[0]), "^%s$" % choice),
                  "no %s under %s: %r" % (choice, copies[0], labels))

        # three conflicts in one burst: one notification at once, the other two
        # collapsed into one when the rate limit's window closes
        time.sleep(NOTIFY_INTERVAL + 2)
        conflicts = [n for n in desk.notifications() if "conflict" in n[0].lower()]
        print("# conflict notifications: %r" % conflicts)
        check(len(conflicts) == 2 and conflicts[1][0] == "2 new conflicts in “%s”" % name,
              "expected one and then one for 2 more: %r" % conflicts)
        desk.screenshot("conflicts")

        # Keep both for one.txt: the copy gets a plain name
        one = [c for c in copies if c.startswith("one (conflict")][0]
        desk.click("^%s — " % name, "^Show conflicts", re.escape(one), "^Keep both$")
        desk.wait_menu("^%s — 2 conflicts$" % name, "^Show conflicts \\(2\\)$")
        wait_for(lambda: os.path.exists(os.path.join(dev.root, "one (2).txt")), 30 * SLOW, "one (2).txt")
        check(open(os.path.join(dev.root, "one (2).txt"), "rb").read() == b"A's one.txt", "one (2).txt")
        for f in ("two.txt", "three.txt"):
            copy = [c for c in copies if c.startswith(f[:-4] + " (conflict")][0]
            desk.click("^%s — " % name, "^Show conflicts", re.escape(copy), "^Keep mine$")
            wait_for(lambda: not os.path.exists(os.path.join(dev.root, copy)), 30 * SLOW, "%s resolved" % f)
        desk.wait_menu("^%s — Up to date$" % name, "^No conflicts$")
        desk.wait_icon("idle")
        check(open(os.path.join(dev.root, "two.txt"), "rb").read() == b"A's two.txt", "two.txt is not A's")

        # the notification server got them (dunst keeps closed ones in its history)
        subprocess.run(["dunstctl", "close-all"], env=desk.env(), check=True, timeout=30)
        history = subprocess.run(["dunstctl", "history"], env=desk.env(), capture_output=True,
                                 timeout=30).stdout.decode()
        check("conflicts in" in history or "Conflict in" in history, "not in dunst's history: " + history[:2000])
        desk.quit_applet()
    finally:
        teardown(ws, dev, desk)


def test_pair_window_qr_code_and_paired_notification():
    ws, dev, desk = session("pair")
    try:
        name = os.path.basename(dev.root)
        desk.wait_menu("^%s — Up to date$" % name)
        desk.click("^%s — " % name, "^Pair a device…$")
        wait_for(lambda: "Pair a device with “%s”" % name in desk.windows(), 30 * SLOW, "the pairing window")
        time.sleep(1.5 * SLOW)  # the token arrived and the countdown ticked
        shot = desk.screenshot("pair-window")
        check(shutil.which("zbarimg") is not None, "zbarimg (zbar-tools) is needed to read the QR code")
        out = subprocess.run(["zbarimg", "-q", "--raw", shot], capture_output=True, timeout=60).stdout.decode()
        # one token; zbarimg now and then ends its line with a second newline
        check(re.fullmatch(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\n*", out), "QR code read as %r" % out)
        token = out.strip()
        # device C (its own daemon and bus) syncs a folder to another store
        other = DaemonDevice(ws, "C", ws.store("store2"), ws.keyfile("key2"))
        try:
            other.start()
            other.add_folder("--batch-interval", "200", "--poll-interval", "1")
            # the token read from the QR code pairs C with A's folder
            c_second = ws.path("C", "second")
            os.makedirs(c_second)
            write(dev.root, "hello.txt", b"hi")
            other.cli("pair", "--token", token, "--path", c_second, "--store", dev.store)
            wait_for(lambda: os.path.exists(os.path.join(c_second, "hello.txt")), 30 * SLOW,
                     "A's file on C, paired through the QR code")
            # A redeems C's token: Manager.FolderPaired, the applet notifies
            out = other.cli("generate-token", "--path", other.root).stdout.decode()
            c_token = re.search(r"[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", out).group(0)
            second = ws.path("A", "second")
            os.makedirs(second)
            dev.cli("pair", "--token", c_token, "--path", second, "--store", other.store)
            desk.wait_notification("^“second” is paired$")
            desk.wait_menu("^second — ")
            check([s for s, _ in desk.notifications()] == ["“second” is paired"],
                  "notifications: %r" % desk.notifications())
        finally:
            other.stop()
        desk.quit_applet()
    finally:
        teardown(ws, dev, desk)


def test_held_deletes_and_error_notifications():
    ws, dev, desk = session("held")
    try:
        name = os.path.basename(dev.root)
        files = ["f%02d.txt" % i for i in range(20)]
        for f in files:
            write(dev.root, f, b"file " + f.encode())
        other = ws.device("B", dev.store, dev.key)
        wait_for(lambda: len([f for f in files if os.path.exists(os.path.join(other.root, f))]) == 20
                 if other.sync() is not None else False, 30 * SLOW, "20 files on B")
        for f in files:
            os.unlink(os.path.join(other.root, f))
        other.sync("--confirm-deletes")
        desk.wait_notification("^Deletions held back in “%s”$" % name)
        held = [b for s, b in desk.notifications() if s.startswith("Deletions held back")]
        check(held[0].startswith("20 deletions would remove"), "body: %r" % held)
        desk.wait_menu("^%s — 20 deletions held back$" % name, "^Apply 20 held deletions$")
        desk.wait_icon("conflict")
        desk.click("^%s — " % name, "^Apply 20 held deletions$")
        wait_for(lambda: not any(os.path.exists(os.path.join(dev.root, f)) for f in files), 30 * SLOW,
                 "the deletions applied")
        desk.wait_menu("^%s — Up to date$" % name)
        # nothing is held any more: the notification is withdrawn
        wait_for(lambda: desk.withdrawn() == 1, 10 * SLOW, "the held-deletes notification withdrawn")

        # the folder goes away: its syncs fail (state error) until it is back
        moved = dev.root + ".moved"
        os.rename(dev.root, moved)
        desk.click("^%s — " % name, "^Sync now$")
        desk.wait_notification("^Syncing “%s” stopped$" % name)
        desk.wait_icon("error")
        desk.wait_menu("^%s — Error: .*does not exist" % name)
        desk.screenshot("error")
        os.rename(moved, dev.root)
        desk.click("^%s — " % name, "^Sync now$")
        desk.wait_menu("^%s — Up to date$" % name)
        wait_for(lambda: desk.withdrawn() == 2, 10 * SLOW, "the error notification withdrawn")
        routine = [s for s, _ in desk.notifications()
                   if not re.match("^(Deletions held back|Syncing “.*” stopped)", s)]
        check(not routine, "notifications for routine syncs: %r" % routine)
        desk.quit_applet()
    finally:
        teardown(ws, dev, desk)


def test_survives_daemon_restart():
    ws, dev, desk = session("restart")
    try:
        name = os.path.basename(dev.root)
        desk.wait_menu("^%s — Up to date$" % name)
        dev.kill_daemon()
        desk.wait_menu("^FolderSync is not running$")
        desk.wait_icon("offline")
        check(desk.find("^Start FolderSync$") is not None, desk.labels())
        dev.start_daemon()
        desk.wait_menu("^%s — Up to date$" % name)
        desk.wait_icon("idle")
        # and it still follows the new daemon's changes
        desk.click("^%s — " % name, "^Pause$")
        desk.wait_menu("^%s — Paused$" % name)
        desk.wait_icon("paused")
        check(desk.applet.poll() is None, "the applet exited:\n" + desk.log())
        desk.quit_applet()
    finally:
        teardown(ws, dev, desk)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--watcher":
        run_watcher(sys.argv[2])
        sys.exit(0)
    if not APPLET:
        print("1..0 # SKIP foldersync-applet was not built (meson -Dapplet=disabled, or GTK 3, "
              "libayatana-appindicator3 or libqrencode missing)")
        sys.exit(0)
    sys.exit(run_tests([test_menu_follows_state_and_resolves_conflicts,
                        test_pair_window_qr_code_and_paired_notification,
                        test_held_deletes_and_error_notifications,
                        test_survives_daemon_restart]))
