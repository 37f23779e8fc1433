"""8: frames flow through a 3-module chain intact and in order; a slow consumer
makes its producer drop (counted) while memory stays flat."""
import os
import time

from harness import Kernel, module, rss_kb, run_cases

# ASan keeps freed blocks in a quarantine (256 MB by default) that shows up as
# RSS growth; it is the sanitizer's memory, not ours, so keep it small here.
os.environ["ASAN_OPTIONS"] = "detect_leaks=1:quarantine_size_mb=4"


def test_frames_flow_intact_through_three_modules():
    k = Kernel([module("src", "test-source", width=1280, height=720, fps=30),
                module("relay", "test-relay"), module("sink", "test-sink")], name="flow").start()
    try:
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) > 0, 5, "first frame at the sink")
        s0 = k.mod("src")["module"]["produced"]
        n0 = k.mod("sink")["module"]["frames"]
        time.sleep(3)
        st = k.status()
        produced = k.mod("src", st)["module"]["produced"] - s0
        sink = k.mod("sink", st)["module"]
        got = sink["frames"] - n0
        assert produced >= 80, f"source made only {produced} frames in 3 s at 30 fps"
        assert got >= 0.95 * produced, f"sink got {got} of {produced}"
        assert sink["corrupt"] == 0 and sink["backwards"] == 0, sink
        assert k.mod("relay", st)["module"]["corrupt"] == 0
        assert (sink["width"], sink["height"]) == (1280, 720), sink
        print(f"     {got} of {produced} 720p frames through 3 modules, none damaged")
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


def test_slow_consumer_causes_counted_drops_not_growth():
    k = Kernel([module("src", "test-source", width=1280, height=720, fps=60),
                module("relay", "test-relay"), module("sink", "test-sink", delay_ms=80)],
               name="slow").start()
    try:
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) > 5, 5, "sink receiving")
        pids = k.pids()
        time.sleep(1)  # past start-up allocations
        rss0 = {n: rss_kb(p) for n, p in pids.items()}
        samples = []
        for _ in range(12):
            time.sleep(0.5)
            samples.append({n: rss_kb(p) for n, p in pids.items()})
        st = k.status()
        relay, sink = k.mod("relay", st), k.mod("sink", st)
        assert relay["drops"] > 50, f"the producer of a slow consumer did not drop: {relay}"
        assert sink["module"]["corrupt"] == 0 and sink["module"]["backwards"] == 0, sink
        assert sink["module"]["gaps"] > 0, sink
        # 6 s at 60 fps of 1.4 MB frames would be 500 MB if anything queued them
        for n in pids:
            growth = max(s[n] for s in samples) - rss0[n]
            assert growth < 8 * 1024, f"{n} RSS grew {growth} kB: {rss0[n]} -> {samples}"
        ring = os.path.getsize(os.path.join(k.rundir, "relay.ring"))
        assert ring < 8 * 1024 * 1024, f"relay ring is {ring} bytes"
        print(f"     relay dropped {relay['drops']} frames "
              f"({relay['drops_detail'] if 'drops_detail' in relay else ''}), sink got "
              f"{sink['module']['frames']}; RSS growth kB: "
              + ", ".join(f"{n} {max(s[n] for s in samples) - rss0[n]}" for n in pids))
    finally:
        k.stop()
    k.check_clean_log()
    k.cleanup()


run_cases([test_frames_flow_intact_through_three_modules,
           test_slow_consumer_causes_counted_drops_not_growth])
