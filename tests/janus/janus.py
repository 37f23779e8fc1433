"""Runs a real Janus 1.1.2 from a private folder and talks to it over HTTP.

Janus never reads /etc/janus here: janus.jcfg and every plugin/transport .jcfg
are generated into <dir>/conf, and the plugins/ and transports/ folders hold
symlinks to exactly what the test asked for (plus libjanus_http.so). Each
instance picks free ports for the Janus API and the Admin API, so tests can
run side by side. Every failed check raises; Janus errors raise JanusError
with Janus's own code and reason.

    j = Janus({"janus.plugin.outpost": "build/.../libjanus_outpost.so"},
              {"janus.plugin.outpost": "general: { }\\n"})
    try:
        j.start()
        j.admin({"request": "list"})
        c = j.client(); c.create_session(); h = c.attach("janus.plugin.outpost")
        c.message(h, {"request": "watch"}, full=True)["jsep"]
    finally:
        j.cleanup()
"""

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

JANUS_BIN = "/usr/bin/janus"
JANUS_PP_REC = "/usr/bin/janus-pp-rec"
JANUS_LIB = "/usr/lib/x86_64-linux-gnu/janus"
PLUGINS = os.path.join(JANUS_LIB, "plugins")
TRANSPORTS = os.path.join(JANUS_LIB, "transports")
STREAMING_SO = os.path.join(PLUGINS, "libjanus_streaming.so")
HTTP_SO = os.path.join(TRANSPORTS, "libjanus_http.so")
# What a sanitizer writes when it finds something: any of these in Janus's log
# fails the test (Janus.cleanup raises).
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")
LSAN_SUPP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lsan.supp")


def _needs_asan(so):
    """Whether a plugin was built with ASan (the sanitized build): then Janus,
    which is not, must start with the sanitizer runtimes preloaded."""
    try:
        with open(so, "rb") as f:
            return b"libasan.so" in f.read()
    except OSError:
        return False


def sanitizer_env(env=None):
    """The environment that runs an uninstrumented binary (Janus) with
    instrumented plugins: libasan first (it must come first in the initial
    library list), then libubsan; reports go to the process's stderr (our log),
    leaks are checked at a clean exit against tests/lsan.supp."""
    env = dict(os.environ if env is None else env)
    libs = []
    for lib in ("libasan.so", "libubsan.so"):
        path = subprocess.run(["gcc", f"-print-file-name={lib}"], capture_output=True,
                              text=True).stdout.strip()
        libs.append(os.path.realpath(path))
    env["LD_PRELOAD"] = ":".join(libs)
    env["ASAN_OPTIONS"] = ("detect_leaks=1:abort_on_error=0:allocator_may_return_null=1" +
                           os.environ.get("OUTPOST_ASAN_EXTRA", ""))
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
    env["LSAN_OPTIONS"] = f"print_suppressions=0:suppressions={LSAN_SUPP}"
    return env


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_test():
    """preexec_fn: Janus gets SIGKILL if the test process dies without cleaning up."""
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class JanusError(Exception):
    """A Janus (or plugin) error: code and reason as Janus sent them."""

    def __init__(self, code, reason, reply=None):
        super().__init__(f"Janus error {code}: {reason}")
        self.code, self.reason, self.reply = code, reason, reply


def free_port(kind=socket.SOCK_STREAM, exclude=()):
    """A port nobody listens on right now (the kernel's choice for port 0)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in exclude:
            return port


def ice_interface():
    """The first non-loopback interface with an IPv4 address, or None.
    Janus never gathers loopback candidates, so ICE needs this one."""
    try:
        out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True,
                             timeout=5).stdout
        for line in out.splitlines():
            name = line.split()[1]
            if name != "lo":
                return name.split("@")[0]
    except (OSError, subprocess.TimeoutExpired):
        for name in sorted(os.listdir("/sys/class/net")):
            try:
                with open(f"/sys/class/net/{name}/operstate") as f:
                    up = f.read().strip() != "down"
            except OSError:
                up = False
            if name != "lo" and up:
                return name
    return None


def _jcfg_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[ " + ", ".join(_jcfg_value(x) for x in v) + " ]"
    return json.dumps(str(v))


def render_jcfg(sections):
    """{"general": {"key": value}, ...} -> Janus's libconfig-style text."""
    out = []
    for name, items in sections.items():
        out.append(f"{name}: {{")
        out += [f"\t{k} = {_jcfg_value(v)}" for k, v in items.items()]
        out.append("}")
    return "\n".join(out) + "\n"


def _http(url, body=None, timeout=10):
    """GET (body None) or POST JSON; returns the parsed reply. A Janus error
    reply (in a 200 or in an HTTP error page) raises JanusError."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            reply = json.loads(text)
        except ValueError:
            raise JanusError(e.code, f"HTTP {e.code} {e.reason} from {url}") from None
        _raise_if_error(reply)
        raise JanusError(e.code, f"HTTP {e.code} {e.reason} from {url}", reply) from None
    reply = json.loads(text)
    _raise_if_error(reply)
    return reply


def _raise_if_error(reply):
    if isinstance(reply, dict) and reply.get("janus") == "error":
        err = reply.get("error", {})
        raise JanusError(err.get("code"), err.get("reason"), reply)


def _raise_if_plugin_error(data, reply):
    """Plugins report their own errors inside a success: {"error_code", "error"}."""
    if isinstance(data, dict) and "error_code" in data:
        raise JanusError(data["error_code"], data.get("error"), reply)


_tx_lock = threading.Lock()
_tx_count = 0


def _transaction():
    global _tx_count
    with _tx_lock:
        _tx_count += 1
        return f"t{os.getpid()}-{_tx_count}"


class Janus:
    """One Janus process with a private folder under /dev/shm."""

    def __init__(self, plugins=None, plugin_configs=None, admin_secret="outpost-admin-secret",
                 session_timeout=60, debug_level=4, rtp_port_range=None, name="janus",
                 general=None, nat=None, event_handlers=None, http_ip="127.0.0.1", preexec=None):
        # http_ip/preexec: a Janus inside a network namespace (tests/link/lab.py)
        # is entered with preexec (setns before exec) and reached on http_ip.
        self.http_ip = http_ip
        self.preexec = preexec
        self.plugins = dict(plugins if plugins is not None else {"janus.plugin.streaming": STREAMING_SO})
        self.plugin_configs = dict(plugin_configs or {})
        self.admin_secret = admin_secret
        self.dir = tempfile.mkdtemp(prefix=f"outpost-{name}-", dir="/dev/shm")
        self.conf_dir = os.path.join(self.dir, "conf")
        self.log_path = os.path.join(self.dir, "janus.log")
        self.port = free_port()
        self.admin_port = free_port(exclude=(self.port,))
        if rtp_port_range is None:
            # Below the kernel's ephemeral range (32768-60999); a random block
            # per instance so parallel Janus instances rarely share ports.
            lo = 10000 + int.from_bytes(os.urandom(2), "little") % 22 * 1000
            rtp_port_range = f"{lo}-{lo + 999}"
        self.rtp_port_range = rtp_port_range
        self.iface = ice_interface()
        self.proc = None
        self._log = None
        self._log_offset = 0
        self.starts = 0
        self.sanitized = any(_needs_asan(so) for so in self.plugins.values())

        folders = {k: os.path.join(self.dir, k) for k in
                   ("conf", "plugins", "transports", "events", "loggers")}
        for d in folders.values():
            os.mkdir(d)
        for package, so in self.plugins.items():
            so = os.path.abspath(so)
            if not os.path.exists(so):
                raise FileNotFoundError(f"plugin {package}: {so} does not exist")
            os.symlink(so, os.path.join(folders["plugins"], os.path.basename(so)))
        os.symlink(HTTP_SO, os.path.join(folders["transports"], os.path.basename(HTTP_SO)))
        # event handlers: {package: (so, jcfg text)}, e.g. janus.eventhandler.sampleevh
        for package, (so, text) in (event_handlers or {}).items():
            os.symlink(so, os.path.join(folders["events"], os.path.basename(so)))
            self.plugin_configs[package] = text

        nat_section = {"nice_debug": False}
        if self.iface:
            nat_section["ice_enforce_list"] = self.iface
        nat_section.update(nat or {})
        general_section = {
            "configs_folder": folders["conf"],
            "plugins_folder": folders["plugins"],
            "transports_folder": folders["transports"],
            "events_folder": folders["events"],
            "loggers_folder": folders["loggers"],
            "debug_level": debug_level,
            "debug_timestamps": True,
            "debug_colors": False,
            "admin_secret": admin_secret,
            "server_name": f"outpost-test-{os.path.basename(self.dir)}",
            "session_timeout": session_timeout,
            "protected_folders": ["/bin", "/boot", "/dev", "/etc", "/lib", "/proc",
                                  "/sbin", "/sys", "/usr", "/var"],
        }
        general_section.update(general or {})
        self._write("janus.jcfg", render_jcfg({
            "general": general_section,
            "certificates": {},
            "media": {"rtp_port_range": rtp_port_range},
            "nat": nat_section,
            "plugins": {}, "transports": {}, "loggers": {},
            "events": {"broadcast": bool(event_handlers)},
        }))
        self._write("janus.transport.http.jcfg", render_jcfg({
            "general": {"json": "indented", "base_path": "/janus", "http": True,
                        "port": self.port, "ip": http_ip, "https": False},
            "admin": {"admin_base_path": "/admin", "admin_http": True,
                      "admin_port": self.admin_port, "admin_ip": http_ip,
                      "admin_https": False},
            "cors": {},
        }))
        for package, text in self.plugin_configs.items():
            self._write(f"{package}.jcfg", text)

    def _write(self, name, text):
        with open(os.path.join(self.conf_dir, name), "w") as f:
            f.write(text)

    # --- addresses
    @property
    def url(self):
        return f"http://{self.http_ip}:{self.port}/janus"

    @property
    def admin_url(self):
        return f"http://{self.http_ip}:{self.admin_port}/admin"

    @property
    def ports(self):
        return {"http": self.port, "admin": self.admin_port, "rtp": self.rtp_port_range}

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # --- life cycle
    def argv(self):
        return [JANUS_BIN, "-C", os.path.join(self.conf_dir, "janus.jcfg"), "-F", self.conf_dir,
                "-P", os.path.join(self.dir, "plugins"), "-o"]

    def start(self, timeout=10):
        """Starts Janus; returns the seconds until GET /janus/info answered 200."""
        assert not self.running(), "Janus is already running"
        self._log = open(self.log_path, "ab")
        self._log_offset = self._log.tell()
        self.starts += 1
        t0 = time.monotonic()
        env = sanitizer_env() if self.sanitized else None
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.dir, env=env,
                                     start_new_session=True, preexec_fn=self._preexec)
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"Janus exited ({self.proc.returncode}) during start-up:\n"
                                     f"{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/info", timeout=1) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() - t0 > timeout:
                self.kill()
                raise AssertionError(f"Janus did not answer /janus/info within {timeout} s:\n"
                                     f"{self.log()}")
            time.sleep(0.01)

    def _preexec(self):
        _die_with_test()
        if self.preexec:
            self.preexec()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def group_alive(self):
        """Whether anything of Janus's process group is left."""
        if self.proc is None:
            return False
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self, timeout=5):
        """SIGTERM, SIGKILL after `timeout` s; returns Janus's exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        return self._reap()

    def kill(self):
        """SIGKILL to the whole group, as in a crash; returns the exit code."""
        if self.proc is None:
            return None
        return self._reap()

    def _reap(self):
        if self.group_alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        rc = self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def restart(self, timeout=10):
        """Stops (if running) and starts again: same folder, ports and config."""
        self.stop()
        return self.start(timeout)

    def cleanup(self, check=True):
        """Stops Janus and removes its folder. A sanitizer report anywhere in its
        log (every run of it) raises AssertionError: a test that provoked one
        fails, whatever else it checked."""
        self.stop(timeout=10 if self.sanitized else 5)
        reports = self.sanitizer_reports()
        if reports and check:
            keep = tempfile.mkdtemp(prefix="outpost-janus-report-", dir="/tmp")
            shutil.copy(self.log_path, keep)
            shutil.rmtree(self.dir, ignore_errors=True)
            raise AssertionError(f"sanitizer report in Janus's log (kept in {keep}):\n"
                                 + "\n".join(reports[:80]))
        shutil.rmtree(self.dir, ignore_errors=True)

    def sanitizer_reports(self):
        """The lines from the first sanitizer report on, over every run ([] if none)."""
        lines = self.log(all_runs=True).splitlines()
        for i, line in enumerate(lines):
            if any(m in line for m in SANITIZER_MARKS):
                return lines[i:]
        return []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # --- log
    def log(self, all_runs=False):
        """Janus's output since the last start (or of every run)."""
        try:
            with open(self.log_path, "rb") as f:
                if not all_runs:
                    f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_errors(self):
        """Lines Janus logged at error or fatal level since the last start."""
        return [l for l in self.log().splitlines() if "[ERR]" in l or "[FATAL]" in l]

    # --- APIs
    def info(self):
        return _http(self.url + "/info")

    def admin(self, request, plugin=None, secret=None, timeout=10):
        """message_plugin through the Admin API; returns the plugin's `response`.
        plugin defaults to the only (first) requested plugin."""
        plugin = plugin or next(iter(self.plugins))
        reply = self.admin_raw({"janus": "message_plugin", "plugin": plugin, "request": request},
                               secret=secret, timeout=timeout)
        data = reply.get("response", reply)
        _raise_if_plugin_error(data, reply)
        return data

    def admin_raw(self, body, path="", secret=None, timeout=10):
        """Any Admin API request (list_sessions, handle_info with path="/s/h", ...)."""
        body = dict(body)
        body.setdefault("transaction", _transaction())
        body.setdefault("admin_secret", self.admin_secret if secret is None else secret)
        return _http(self.admin_url + path, body, timeout=timeout)

    def client(self, **kw):
        return Client(self.url, **kw)


class Client:
    """A Janus API client for one session (HTTP transport, long polling).

    Events are fetched by a background long poll (GET /janus/<session>?maxev=N),
    which also keeps the session alive; Client(url, longpoll=False) polls only
    while waiting for an event, so a session left alone can time out."""

    def __init__(self, url, longpoll=True, maxev=16, token=None):
        self.url = url
        self.token = token  # Janus's token_auth: sent with every request
        self.longpoll = longpoll
        self.maxev = maxev
        self.session = None
        self.handles = {}
        self._queue = []
        self._cond = threading.Condition()
        self._thread = None
        self._stop = False
        self.poll_error = None

    # --- requests
    def request(self, body, handle=None, timeout=10):
        """One Janus API request on this session (or handle); returns the reply."""
        body = dict(body)
        body.setdefault("transaction", _transaction())
        if self.token is not None:
            body.setdefault("token", self.token)
        path = self.url
        if self.session is not None:
            path += f"/{self.session}"
            if handle is not None:
                path += f"/{handle}"
        return _http(path, body, timeout=timeout)

    def create_session(self):
        reply = self.request({"janus": "create"})
        self.session = reply["data"]["id"]
        if self.longpoll:
            self._stop = False
            self._thread = threading.Thread(target=self._poller, daemon=True,
                                            name=f"janus-longpoll-{self.session}")
            self._thread.start()
        return self.session

    def attach(self, plugin):
        reply = self.request({"janus": "attach", "plugin": plugin})
        handle = reply["data"]["id"]
        self.handles[handle] = plugin
        return handle

    def message(self, handle, body, jsep=None, timeout=10, full=False):
        """Sends a message to the plugin. Returns the plugin's data of the
        synchronous answer or, after an "ack", of the event carrying the same
        transaction. full=True returns the whole Janus message (e.g. for "jsep")."""
        msg = {"janus": "message", "body": body}
        if jsep is not None:
            msg["jsep"] = jsep
        tx = msg["transaction"] = _transaction()
        reply = self.request(msg, handle)
        if reply.get("janus") == "ack":
            reply = self.wait_event(lambda e: e.get("transaction") == tx and
                                    e.get("janus") == "event", timeout,
                                    f"the event answering {body}")
        data = reply.get("plugindata", {}).get("data")
        _raise_if_plugin_error(data, reply)
        return reply if full else data

    def trickle(self, handle, candidate):
        """candidate: a dict, a list of dicts, or None for "completed"."""
        key = "candidates" if isinstance(candidate, list) else "candidate"
        return self.request({"janus": "trickle",
                             key: candidate if candidate is not None else {"completed": True}},
                            handle)

    def keepalive(self):
        return self.request({"janus": "keepalive"})

    def detach(self, handle):
        reply = self.request({"janus": "detach"}, handle)
        self.handles.pop(handle, None)
        return reply

    def destroy(self):
        """Destroys the session (if Janus still has it) and stops the long poll."""
        self._stop = True
        try:
            if self.session is not None:
                return self.request({"janus": "destroy"})
        finally:
            self.session = None
            self.handles.clear()
            # The in-flight long poll ends by itself (Janus answers it within 30 s).

    # --- events
    def _poll_once(self, timeout=40):
        """One long poll; Janus answers within 30 s (a "keepalive" if idle)."""
        token = f"&token={urllib.parse.quote(self.token)}" if self.token is not None else ""
        reply = _http(f"{self.url}/{self.session}?maxev={self.maxev}&rid={time.time_ns()}{token}",
                      timeout=timeout)
        events = reply if isinstance(reply, list) else [reply]
        events = [e for e in events if e.get("janus") != "keepalive"]
        if events:
            with self._cond:
                self._queue.extend(events)
                self._cond.notify_all()

    def _poller(self):
        session = self.session
        while not self._stop and self.session == session:
            try:
                self._poll_once()
            except Exception as e:  # noqa: BLE001 - Janus gone or session over
                if not self._stop:
                    self.poll_error = e
                with self._cond:
                    self._cond.notify_all()
                return

    def wait_event(self, pred, timeout=10, what="an event"):
        """Removes and returns the first queued event with pred(event) true."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self._queue):
                    if pred(ev):
                        return self._queue.pop(i)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} within {timeout} s; queued: {self._queue}")
                if self.longpoll:
                    if self.poll_error is not None:
                        raise AssertionError(f"long poll failed ({self.poll_error}) while "
                                             f"waiting for {what}")
                    self._cond.wait(left)
                else:
                    self._cond.release()
                    try:
                        self._poll_once()
                    finally:
                        self._cond.acquire()

    def events(self, timeout=0.0):
        """Drains the queued events, waiting up to `timeout` s for the first one."""
        try:
            first = self.wait_event(lambda e: True, timeout) if timeout > 0 else None
        except TimeoutError:
            return []
        with self._cond:
            out = ([first] if first else []) + self._queue
            self._queue = []
        return out


def wait_for(janus, get, pred, timeout, what, interval=0.05):
    """Polls get() (e.g. a device's status from janus's Admin API) until pred
    holds: (value, seconds waited). Errors while polling (Janus restarting)
    count as not yet; a timeout raises with the last value and Janus's log."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            last = get()
            if pred(last):
                return last, time.monotonic() - t0
        except (JanusError, OSError) as e:
            last = str(e)
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}: {last}\n"
                         f"--- janus ---\n{janus.log()[-3000:]}")


def janus_pp_rec(mjr, out, *options, timeout=60):
    """Runs janus-pp-rec (e.g. .mjr -> .mp4); returns (rc, stdout+stderr).
    A test should still check that `out` exists and decodes."""
    r = subprocess.run([JANUS_PP_REC, "-o", *options, mjr, out], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout + r.stderr
