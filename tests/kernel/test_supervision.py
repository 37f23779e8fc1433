"""2-4, 7: restarts after kill -9, heartbeat loss, crash back-off, intensity,
fallback, and SIGHUP reloading only what changed."""
import os
import re
import signal
import time

from harness import Kernel, module, pid_alive, run_cases

CHAIN = [module("src", "test-source", fps=30), module("relay", "test-relay"),
         module("sink", "test-sink")]


def test_kill9_restarts_within_1s():
    k = Kernel(CHAIN, name="kill9").start()
    try:
        before = k.pids()
        k.wait(lambda s: k.mod("sink", s)["frames_in"] or 0 > 0, 5, "frames at the sink")
        os.kill(before["relay"], signal.SIGKILL)
        st, took = k.wait(lambda s: k.mod("relay", s)["pid"] not in (0, before["relay"])
                          and k.mod("relay", s)["state"] == "running", 1.0, "relay restarted")
        after = {m["name"]: m["pid"] for m in st["modules"]}
        assert after["src"] == before["src"] and after["sink"] == before["sink"], (before, after)
        relay = k.mod("relay", st)
        assert relay["restarts"] == 1 and "signal 9" in relay["last_exit"], relay
        print(f"     restart latency after kill -9: {took * 1000:.0f} ms")
        # and frames flow again through the new relay
        n0 = k.mod("sink")["frames_in"] or 0
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) > n0 + 10, 3, "frames after restart")
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


def _hung_is_replaced(how):
    k = Kernel(CHAIN, name="hb").start()
    try:
        before = k.pids()
        t0 = time.monotonic()
        if how == "sigstop":
            os.kill(before["relay"], signal.SIGSTOP)
        else:
            k.send("relay", "hang")
        while pid_alive(before["relay"]) and time.monotonic() - t0 < 5:
            time.sleep(0.01)
        detected = time.monotonic() - t0
        assert not pid_alive(before["relay"]), "hung module never killed"
        assert detected <= 3.5, f"hung module killed after {detected:.2f} s (> 3.5 s)"
        st, _ = k.wait(lambda s: k.mod("relay", s)["state"] == "running"
                       and k.mod("relay", s)["pid"] != before["relay"], 2, "relay replaced")
        assert "heartbeat lost" in k.mod("relay", st)["last_exit"], k.mod("relay", st)
        assert k.pids()["src"] == before["src"] and k.pids()["sink"] == before["sink"]
        print(f"     {how}: killed {detected * 1000:.0f} ms after it stopped, "
              f"running again {(time.monotonic() - t0) * 1000:.0f} ms after")
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


def test_sigstop_detected_within_3_5s():
    _hung_is_replaced("sigstop")


def test_hang_in_callback_detected():
    _hung_is_replaced("hang")


def test_crash_at_start_backs_off_then_fails():
    k = Kernel([module("src", "test-source"), module("bad", "test-relay", crash_at_start=True)],
               name="crash")
    k.start(wait_running=False)
    try:
        st, took = k.wait(lambda s: k.mod("bad", s)["state"] == "failed", 15, "bad failed")
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


def test_sighup_restarts_only_the_changed_module():
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
        # a module added by a reload starts; a removed one stops
        mods.append(module("extra", "test-sink"))
        k.write(mods)
        os.kill(k.proc.pid, signal.SIGHUP)
        st, _ = k.wait(lambda s: any(m["name"] == "extra" and m["state"] == "running"
                                     for m in s["modules"]), 5, "extra running")
        assert {m["name"]: m["pid"] for m in st["modules"]}["sink"] == after["sink"]
        print(f"     changed module replaced {took * 1000:.0f} ms after SIGHUP")
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


run_cases([test_kill9_restarts_within_1s, test_sigstop_detected_within_3_5s,
           test_hang_in_callback_detected, test_crash_at_start_backs_off_then_fails,
           test_fallback_takes_over, test_sighup_restarts_only_the_changed_module])
