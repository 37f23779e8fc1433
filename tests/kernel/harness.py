"""Runs a real outpost-kernel with the test modules and reads its state.

Each test gets a private folder (config, runtime dir, log). The kernel runs
in its own session and process group, so a test can check that nothing of
it survives. Every check raises AssertionError with what it saw."""

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("OUTPOST_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
BIN = os.path.join(BUILD, "bin")
MODULES = os.path.join(BUILD, "modules")
TEST_MODULES = os.path.join(BUILD, "tests", "modules")

# Sanitizer reports must fail the test that provoked them, so they are
# searched for in the log; leaks are reported at a clean exit only.
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
os.environ.setdefault("LSAN_OPTIONS", "print_suppressions=0:suppressions=" + os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "lsan.supp"))


_libc = ctypes.CDLL(None, use_errno=True)


def die_with_test():
    """preexec_fn: the process gets SIGKILL when the test process dies, however it
    dies (a ctest timeout, a Ctrl-C): no kernel or Janus left burning a core."""
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def module(name, plugin, restart=None, fallback=None, **settings):
    return dict(name=name, plugin=plugin, restart=restart, fallback=fallback, settings=settings)


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


def render(modules, device="test", runtime_dir=None, module_dir=TEST_MODULES, supervisor=None,
           profile=None):
    extra = f' profile = "{profile}";' if profile else ""
    lines = [f'device = {{ id = "{device}";{extra} }};']
    if runtime_dir:
        lines.append(f'runtime_dir = "{runtime_dir}";')
    if module_dir:
        lines.append(f'module_dir = "{os.path.abspath(module_dir)}";')
    if supervisor:
        body = " ".join(f"{k} = {_value(v)};" for k, v in supervisor.items())
        lines.append(f"supervisor = {{ {body} }};")
    lines.append("modules = (")
    entries = []
    for m in modules:
        parts = [f'name = "{m["name"]}";', f'plugin = "{m["plugin"]}";']
        if m.get("restart"):
            parts.append(f'restart = "{m["restart"]}";')
        if m.get("fallback"):
            parts.append(f'fallback = "{m["fallback"]}";')
        if m.get("settings"):
            body = " ".join(f"{k} = {_value(v)};" for k, v in m["settings"].items())
            parts.append(f"settings = {{ {body} }};")
        entries.append("  { " + " ".join(parts) + " }")
    lines.append(",\n".join(entries))
    lines.append(");")
    return "\n".join(lines) + "\n"


class Kernel:
    def __init__(self, modules, supervisor=None, name="k", preexec=None, profile=None):
        self.preexec = preexec  # e.g. into the link lab's device namespace
        self.profile = profile  # device.profile: "lan", "cellular"; None: not set
        # tmpfs, as on a device: the frame rings live in the runtime dir
        self.dir = tempfile.mkdtemp(prefix=f"outpost-{name}-", dir="/dev/shm")
        self.rundir = os.path.join(self.dir, "run")
        self.config = os.path.join(self.dir, "device.cfg")
        self.log_path = os.path.join(self.dir, "kernel.log")
        self.supervisor = supervisor
        # A private module folder: the production modules and the test ones, side by side.
        self.module_dir = os.path.join(self.dir, "modules")
        os.mkdir(self.module_dir)
        for d in (MODULES, TEST_MODULES):
            for so in os.listdir(d) if os.path.isdir(d) else []:
                if so.endswith(".so"):
                    os.symlink(os.path.abspath(os.path.join(d, so)),
                               os.path.join(self.module_dir, so))
        self.write(modules)
        self.proc = None

    def usage_file(self, name="uplink"):
        """Where uplink module `name` keeps its byte meter: in this kernel's
        folder, unless the test set usage_file (the default, under /var/lib,
        is the machine's, and shared by every test)."""
        return os.path.join(self.dir, "state", f"{name}-usage.json")

    def write(self, modules):
        modules = [dict(m, settings=dict(m["settings"], usage_file=self.usage_file(m["name"])))
                   if m["plugin"] == "uplink" and "usage_file" not in (m.get("settings") or {})
                   else m for m in modules]
        with open(self.config, "w") as f:
            f.write(render(modules, runtime_dir=self.rundir, module_dir=self.module_dir,
                           supervisor=self.supervisor, profile=self.profile))

    def start(self, wait_running=True):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([os.path.join(BIN, "outpost-kernel"), "-c", self.config],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True, preexec_fn=self._preexec)
        if wait_running:
            self.wait(lambda s: all(m["state"] == "running" for m in s["modules"]), 10,
                      "every module running")
        return self

    def _preexec(self):
        die_with_test()
        if self.preexec:
            self.preexec()

    def status(self):
        r = subprocess.run([os.path.join(BIN, "outpostctl"), "-c", self.config, "status", "--json"],
                           capture_output=True, text=True, timeout=10)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)

    def mod(self, name, st=None):
        st = st or self.status()
        return next(m for m in st["modules"] if m["name"] == name)

    def pids(self):
        return {m["name"]: m["pid"] for m in self.status()["modules"]}

    def send(self, module, command, args=None):
        argv = [os.path.join(BIN, "outpostctl"), "-c", self.config, "send", module, command]
        if args is not None:
            argv.append(json.dumps(args))
        return subprocess.run(argv, capture_output=True, text=True, timeout=10)

    def wait(self, pred, timeout, what, interval=0.02):
        """Polls status until pred(status) holds; returns (status, seconds waited)."""
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < timeout:
            if self.proc and self.proc.poll() is not None:
                raise AssertionError(f"the kernel exited ({self.proc.returncode}) while waiting "
                                     f"for {what}:\n{self.read_log()}")
            st = self.status()
            if st is not None:
                last = st
                if pred(st):
                    return st, time.monotonic() - t0
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}; last status: "
                             f"{json.dumps(last, indent=1)}\n--- kernel log ---\n{self.read_log()}")

    def read_log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def group_alive(self):
        try:
            os.killpg(self.proc.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc and self.group_alive():
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the group ended between the check and the kill (a CI run's failure)
        if self.proc:
            self.proc.wait()
            self.log.close()

    def check_clean_log(self):
        log = self.read_log()
        for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            assert bad not in log, f"sanitizer report in the kernel log:\n{log}"

    def cleanup(self):
        """Removes the kernel's folder; a sanitizer report in its log (the kernel's
        and every module host's output) fails the test, whether or not the test
        looked itself."""
        try:
            if self.proc and self.proc.poll() is None:
                self.stop()
            if os.path.exists(self.dir) and self.proc:
                self.check_clean_log()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # ESRCH: reaped between the open and the read (two CI runs failed on it)
        return False


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_cases(cases):
    """Runs named test functions; prints one line each and the closing tally."""
    passed = failed = 0
    for fn in cases:
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print(f"ok   {fn.__name__} ({time.monotonic() - t0:.2f} s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failed += 1
            # where it failed: a bare "ProcessLookupError" in a CI log says nothing
            where = traceback.extract_tb(e.__traceback__)[-3:]
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}\n" +
                  "".join(traceback.format_list(where)), flush=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


def picked(cases):
    """The cases OUTPOST_CASES names (any of its comma-separated parts in a
    case's name), or all of them."""
    pick = [p for p in os.environ.get("OUTPOST_CASES", "").split(",") if p]
    return [c for c in cases if not pick or any(p in c.__name__ for p in pick)]


def together(*lanes):
    """One case that runs lanes of cases at once, each lane in a process of its
    own (this script again, OUTPOST_CASES naming the lane's cases, in order),
    and prints each lane's output when it ends. For cases that mostly wait (an
    idle device's minute of keepalives) next to cases that do not mind a
    neighbour: the suite's 20 minutes. Fails when any lane does."""
    def run():
        procs = []
        for lane in lanes:
            env = dict(os.environ, OUTPOST_CASES=",".join(c.__name__ for c in lane))
            procs.append(subprocess.Popen([sys.executable, sys.argv[0]], env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        failed = []
        for lane, p in zip(lanes, procs):
            out, _ = p.communicate()
            print("\n".join("  " + line for line in out.rstrip().splitlines()), flush=True)
            if p.returncode:
                failed.append(" + ".join(c.__name__ for c in lane))
        assert not failed, f"lanes failed: {failed}"
    run.__name__ = " | ".join(" + ".join(c.__name__ for c in lane) for lane in lanes)
    return run


def log_lines(log, pattern):
    return [m for m in re.finditer(pattern, log, re.M)]
