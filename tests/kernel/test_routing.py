"""Commands between modules, through the kernel: a module asks another module
(or the kernel itself, for the module table) and gets the answer back; a bad
target gets an error answer, not silence."""
import json

from harness import Kernel, module, run_cases

CHAIN = [module("src", "test-source"), module("relay", "test-relay"), module("sink", "test-sink")]


def ask(k, target, command, args=None):
    req = {"module": target, "command": command}
    if args is not None:
        req["args"] = args
    r = k.send("relay", "ask", req)
    assert r.returncode == 0, r.stderr
    rid = json.loads(r.stdout)["reply"]["id"]
    st, took = k.wait(lambda s: ((k.mod("relay", s)["module"] or {}).get("last_reply") or {})
                      .get("id") == rid, 4, f"the answer to {target} {command}")
    return k.mod("relay", st)["module"]["last_reply"], took


def test_module_asks_module():
    k = Kernel(CHAIN, name="route").start()
    try:
        ans, took = ask(k, "sink", "ping")
        assert ans["ok"] and ans["reply"]["pong"] == "yes", ans
        assert ans["reply"]["pid"] == k.pids()["sink"], ans
        print(f"     relay -> sink ping answered ({took * 1000:.0f} ms incl. status polling)")
        ans, _ = ask(k, "kernel", "status")
        assert ans["ok"] and [m["name"] for m in ans["reply"]["modules"]] == ["src", "relay",
                                                                               "sink"], ans
        ans, _ = ask(k, "nope", "ping")
        assert not ans["ok"] and "no such module" in ans["reply"]["error"], ans
        ans, _ = ask(k, "sink", "no-such-command")
        assert not ans["ok"] and "unknown command" in ans["reply"]["error"], ans
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


run_cases([test_module_asks_module])
