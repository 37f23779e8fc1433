"""5-6: the kernel's own death. SIGTERM stops the modules last-first within the
grace and exits 0 with nothing left in its group; SIGKILL takes every module
with it within 1 s (no orphans)."""
import os
import re
import signal
import time

from harness import Kernel, module, pid_alive, run_cases

CHAIN = [module("src", "test-source"), module("relay", "test-relay"), module("sink", "test-sink")]


def test_sigterm_stops_in_reverse_order():
    k = Kernel(CHAIN, name="term").start()
    pids = k.pids()
    t0 = time.monotonic()
    k.proc.send_signal(signal.SIGTERM)
    rc = k.proc.wait(5)
    took = time.monotonic() - t0
    assert rc == 0, f"exit {rc}"
    assert took < 3.0, f"took {took:.2f} s, grace is 3 s"
    assert not k.group_alive(), "processes left in the kernel's group"
    assert not any(pid_alive(p) for p in pids.values())
    order = [m.group(1) for m in re.finditer(r"outpost-kernel (\w+)\[\d+\]: stopped: exit 0",
                                             k.read_log())]
    assert order == ["sink", "relay", "src"], f"stop order {order}\n{k.read_log()}"
    k.log.close()
    k.check_clean_log()  # each host exited cleanly: LeakSanitizer ran in each
    print(f"     clean stop in {took * 1000:.0f} ms")
    k.cleanup()


def test_sigterm_kills_a_stuck_module_after_the_grace():
    k = Kernel(CHAIN, name="grace", supervisor={"grace": 1.0}).start()
    pids = k.pids()
    k.send("relay", "hang")  # stops its loop: SIGTERM will go unanswered
    t0 = time.monotonic()
    k.proc.send_signal(signal.SIGTERM)
    rc = k.proc.wait(5)
    took = time.monotonic() - t0
    assert rc == 0, f"exit {rc}"
    assert 0.9 <= took < 1.6, f"took {took:.2f} s with a 1 s grace"
    assert not k.group_alive(), "processes left in the kernel's group"
    assert not any(pid_alive(p) for p in pids.values())
    assert "relay" in k.read_log() and "grace ran out: SIGKILL" in k.read_log()
    k.log.close()
    print(f"     stuck module killed, kernel gone after {took * 1000:.0f} ms")
    k.cleanup()


def test_sigkill_takes_every_module_along():
    k = Kernel(CHAIN, name="kill").start()
    pids = k.pids()
    t0 = time.monotonic()
    k.proc.send_signal(signal.SIGKILL)
    k.proc.wait(5)
    while any(pid_alive(p) for p in pids.values()) and time.monotonic() - t0 < 2:
        time.sleep(0.005)
    took = time.monotonic() - t0
    left = [n for n, p in pids.items() if pid_alive(p)]
    assert not left, f"orphans after {took:.2f} s: {left}"
    assert took <= 1.0, f"modules took {took:.2f} s to go"
    k.stop()
    print(f"     all modules gone {took * 1000:.0f} ms after SIGKILL")
    k.cleanup()


run_cases([test_sigterm_stops_in_reverse_order, test_sigterm_kills_a_stuck_module_after_the_grace,
           test_sigkill_takes_every_module_along])
