"""2-4, 7: restarts after kill -9 (after the first back-off), heartbeat loss (a
hung module killed at the timeout: neither later nor earlier), crash back-off,
intensity, fallback, and SIGHUP reloading only what changed (the changed module
replaced, an added one started, a removed one stopped, the rest untouched)."""
import datetime
import os
import re
import signal
import threading
import time

from harness import Kernel, module, pid_alive, run_cases

CHAIN = [module("src", "test-source", fps=30), module("relay", "test-relay"),
         module("sink", "test-sink")]


def _log_time(log, pattern):
    """The kernel log's timestamp (s) of the first line matching `pattern`."""
    m = re.search(r"^(\S+)Z .*" + pattern, log, re.M)
    assert m, f"no log line matching {pattern!r}:\n{log}"
    return datetime.datetime.fromisoformat(m.group(1)).timestamp()


def test_kill9_respawns_after_the_first_backoff():
    """kill -9: the kernel sees the exit and spawns a new host after the first
    back-off (100 ms), the others untouched, and frames flow through the new one.
    The exit -> spawn interval is the kernel's own (back-off + its reaction), read
    from its log; the new host's start-up is the machine's speed (a sanitized
    process), so it is printed, and only bounded loosely."""
    k = Kernel(CHAIN, name="kill9").start()
    try:
        before = k.pids()
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) > 0, 5, "frames at the sink")
        os.kill(before["relay"], signal.SIGKILL)
        st, took = k.wait(lambda s: k.mod("relay", s)["pid"] not in (0, before["relay"])
                          and k.mod("relay", s)["state"] == "running", 10, "relay restarted")
        after = {m["name"]: m["pid"] for m in st["modules"]}
        assert after["src"] == before["src"] and after["sink"] == before["sink"], (before, after)
        relay = k.mod("relay", st)
        assert relay["restarts"] == 1 and "signal 9" in relay["last_exit"], relay
        log = k.read_log()
        exited = _log_time(log, rf"relay\[{before['relay']}\]: exited: signal 9")
        spawned = _log_time(log, rf"relay\[{after['relay']}\]: spawned")
        assert "relay[0]: backoff 100 ms before restart 1" in log, log
        respawn = spawned - exited
        assert 0.1 <= respawn <= 0.6, \
            f"new host spawned {respawn * 1000:.0f} ms after the exit (back-off 100 ms)"
        print(f"     kill -9: new host spawned {respawn * 1000:.0f} ms after the exit "
              f"(back-off 100 ms), running {took * 1000:.0f} ms after the kill")
        # and frames flow again through the new relay
        n0 = k.mod("sink")["frames_in"] or 0
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) > n0 + 10, 10,
               "frames after restart")
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


# Hang detection, from both sides. The host sends a heartbeat every
# heartbeat_timeout / 6 (0.5 s of the default 3 s) and the kernel kills a module
# whose last heartbeat is heartbeat_timeout old. So a module that hangs at t is
# killed at its last heartbeat + 3 s, i.e. between t + 2.5 s and t + 3.0 s by
# design, whatever the machine's speed. The window allows 0.25 s below (a
# heartbeat the host sent a little late before it hung) and 0.5 s above (the
# kernel's wake-up and reaping, and this test's 10 ms polling).
HEARTBEAT_TIMEOUT = 3.0  # the default; these tests do not set it
BEAT = HEARTBEAT_TIMEOUT / 6
HUNG_KILLED = (HEARTBEAT_TIMEOUT - BEAT - 0.25, HEARTBEAT_TIMEOUT + 0.5)


def _syscall(pid):
    """The number of the system call the process's main thread is in, or None."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


SYS_PAUSE = 34  # x86_64: testkit's "hang" is for (;;) pause();


def _hung_is_replaced(how):
    k = Kernel(CHAIN, name="hb").start()
    try:
        before = k.pids()
        pid = before["relay"]
        if how == "sigstop":
            t0 = time.monotonic()
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                raise AssertionError(f"the relay (pid {pid}, running by the status) was gone "
                                     f"before it could be stopped:\n{k.read_log()}") from None
        else:
            # The command never gets its answer (outpostctl gives up after the
            # kernel's 2 s), so send it from a thread and time the hang itself:
            # the moment the relay's main thread enters pause(). Where
            # /proc/PID/syscall cannot be read, from the moment it was sent.
            readable = _syscall(pid) is not None
            sender = threading.Thread(target=k.send, args=("relay", "hang"), daemon=True)
            t0 = time.monotonic()
            sender.start()
            if readable:
                while _syscall(pid) != SYS_PAUSE and time.monotonic() - t0 < 2:
                    time.sleep(0.002)
                assert _syscall(pid) == SYS_PAUSE, "the relay did not hang on command"
                t0 = time.monotonic()
        while pid_alive(pid) and time.monotonic() - t0 < 6:
            time.sleep(0.01)
        detected = time.monotonic() - t0
        assert not pid_alive(pid), "hung module never killed"
        lo, hi = HUNG_KILLED
        assert detected >= lo, \
            f"hung module killed after {detected:.2f} s: too early (timeout 3 s, heartbeats " \
            f"every {BEAT:.1f} s: not before {lo:.2f} s)"
        assert detected <= hi, f"hung module killed after {detected:.2f} s (> {hi:.2f} s)"
        st, _ = k.wait(lambda s: k.mod("relay", s)["state"] == "running"
                       and k.mod("relay", s)["pid"] != pid, 10, "relay replaced")
        assert "heartbeat lost" in k.mod("relay", st)["last_exit"], k.mod("relay", st)
        assert k.pids()["src"] == before["src"] and k.pids()["sink"] == before["sink"]
        print(f"     {how}: killed {detected * 1000:.0f} ms after it hung (window "
              f"{lo * 1000:.0f}-{hi * 1000:.0f} ms), running again "
              f"{(time.monotonic() - t0) * 1000:.0f} ms after")
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


def test_sigstop_detected_at_the_timeout():
    _hung_is_replaced("sigstop")


def test_hang_in_callback_detected_at_the_timeout():
    _hung_is_replaced("hang")


def test_crash_at_start_backs_off_then_fails():
    k = Kernel([module("src", "test-source"), module("bad", "test-relay", crash_at_start=True)],
               name="crash")
    k.start(wait_running=False)
    try:
        st, took = k.wait(lambda s: k.mod("bad", s)["state"] == "failed", 30, "bad failed")
        delays = [int(m.group(1)) for m in re.finditer(r"bad\[0\]: backoff (\d+) ms", k.read_log())]
        assert delays == [100, 200, 400, 800, 1600], f"back-off delays {delays}"
        assert k.mod("bad", st)["restarts"] == 5, k.mod("bad", st)
        assert k.mod("src", st)["state"] == "running"
        time.sleep(0.5)  # failed stays failed
        assert k.mod("bad")["state"] == "failed" and k.mod("bad")["pid"] == 0
        print(f"     back-off {delays} ms, failed after {took:.1f} s")
    finally:
        k.stop()
    k.cleanup()


def test_fallback_takes_over():
    k = Kernel([module("src", "test-source"),
                module("enc", "test-relay", fallback="test-sink", crash_at_start="test-relay")],
               name="fallback", supervisor={"intensity": 2, "period": 30})
    k.start(wait_running=False)
    try:
        st, took = k.wait(lambda s: k.mod("enc", s)["state"] == "running", 10, "fallback running")
        enc = k.mod("enc", st)
        assert enc["plugin"] == "test-sink" and enc["fallback_active"], enc
        assert enc["configured_plugin"] == "test-relay", enc
        k.wait(lambda s: (k.mod("enc", s)["frames_in"] or 0) > 5, 3, "fallback receives frames")
        assert "starting fallback test-sink" in k.read_log()
        print(f"     fallback running {took:.2f} s after start")
    finally:
        k.stop()
    k.cleanup()


def test_sighup_restarts_the_changed_starts_the_added_stops_the_removed():
    mods = [module("src", "test-source"), module("relay", "test-relay"),
            module("sink", "test-sink", delay_ms=0)]
    k = Kernel(mods, name="hup").start()
    try:
        before = k.pids()
        # a broken edit is refused and changes nothing
        with open(k.config, "a") as f:
            f.write("garbage ((\n")
        os.kill(k.proc.pid, signal.SIGHUP)
        time.sleep(0.5)
        assert "reload refused" in k.read_log()
        assert all(pid_alive(p) for p in before.values()), "a broken reload stopped something"
        k.write(mods)
        assert k.pids() == before, (before, k.pids())
        mods[2] = module("sink", "test-sink", delay_ms=1)
        k.write(mods)
        os.kill(k.proc.pid, signal.SIGHUP)
        st, took = k.wait(lambda s: k.mod("sink", s)["pid"] not in (0, before["sink"])
                          and k.mod("sink", s)["state"] == "running", 5, "sink restarted")
        after = {m["name"]: m["pid"] for m in st["modules"]}
        assert after["src"] == before["src"] and after["relay"] == before["relay"], (before, after)
        # a module added by a reload starts, and the others keep running as they were
        mods.append(module("extra", "test-sink"))
        k.write(mods)
        os.kill(k.proc.pid, signal.SIGHUP)
        st, _ = k.wait(lambda s: any(m["name"] == "extra" and m["state"] == "running"
                                     for m in s["modules"]), 5, "extra running")
        added = {m["name"]: m["pid"] for m in st["modules"]}
        assert {n: added[n] for n in after} == after, (after, added)
        assert pid_alive(added["extra"]), added
        # a module removed by a reload stops (its process gone, its row gone); the
        # others keep their processes
        mods.pop()
        k.write(mods)
        os.kill(k.proc.pid, signal.SIGHUP)
        st, gone = k.wait(lambda s: "extra" not in [m["name"] for m in s["modules"]], 5,
                          "extra gone from the module table")
        removed = {m["name"]: m["pid"] for m in st["modules"]}
        assert removed == after, (after, removed)
        t0 = time.monotonic()
        while pid_alive(added["extra"]) and time.monotonic() - t0 < 2:
            time.sleep(0.01)
        assert not pid_alive(added["extra"]), "the removed module's process is still there"
        assert f"extra[{added['extra']}]: stopped: exit 0" in k.read_log(), k.read_log()
        assert all(pid_alive(p) for p in removed.values()), removed
        print(f"     changed module replaced {took * 1000:.0f} ms after SIGHUP; a removed one "
              f"stopped (exit 0, row gone) {gone * 1000:.0f} ms after, the others untouched")
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


run_cases([test_kill9_respawns_after_the_first_backoff, test_sigstop_detected_at_the_timeout,
           test_hang_in_callback_detected_at_the_timeout, test_crash_at_start_backs_off_then_fails,
           test_fallback_takes_over,
           test_sighup_restarts_the_changed_starts_the_added_stops_the_removed])
