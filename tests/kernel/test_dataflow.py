"""8: frames flow through a 3-module chain intact and in order, and any frame that
does not arrive is counted as dropped on the way; a slow consumer makes its
producer drop (counted) while memory stays flat."""
import os
import time

from harness import Kernel, module, rss_kb, run_cases

# ASan keeps freed blocks in a quarantine (256 MB by default) that shows up as
# RSS growth; it is the sanitizer's memory, not ours, so keep it small here.
os.environ["ASAN_OPTIONS"] = "detect_leaks=1:quarantine_size_mb=4"


def _drops(m):
    return m["drops"] or 0


def test_frames_flow_intact_through_three_modules():
    """720p at 30 fps through source -> relay -> sink: every frame arrives intact
    and in order, or is counted as dropped on the way; none is lost silently.
    How many are dropped is this machine's speed (a sanitized 1.4 MB copy per
    hop, on two shared cores), not the chain's behaviour: it is printed, not
    asserted."""
    k = Kernel([module("src", "test-source", width=1280, height=720, fps=30),
                module("relay", "test-relay"), module("sink", "test-sink")], name="flow").start()
    try:
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) > 0, 10, "first frame at the sink")
        st, took = k.wait(lambda s: (k.mod("sink", s)["module"] or {}).get("frames", 0) >= 90, 60,
                          "90 frames at the sink")
        sink = k.mod("sink", st)["module"]
        # Every frame numbered up to the sink's last either reached it or was
        # dropped, and counted, by one of the three hosts. The hosts report their
        # counters with their heartbeats (every 0.5 s): wait for reports that
        # cover the sink's (they only grow), up to a few heartbeats.
        missing = sink["last"] - sink["frames"]  # the source numbers its frames from 1

        def counted(s):
            return sum(_drops(k.mod(n, s)) for n in ("src", "relay", "sink"))

        try:
            later, _ = k.wait(lambda s: counted(s) >= missing, 5, "the drops counted")
        except AssertionError:
            later = k.status()
        assert sink["corrupt"] == 0 and sink["backwards"] == 0, sink
        assert k.mod("relay", later)["module"]["corrupt"] == 0, k.mod("relay", later)
        assert (sink["width"], sink["height"]) == (1280, 720), sink
        assert missing <= counted(later), \
            f"{missing} frames missing at the sink, only {counted(later)} counted as dropped: " \
            f"{later}"
        detail = ", ".join(f"{n} {_drops(k.mod(n, later))}" for n in ("src", "relay", "sink"))
        print(f"     {sink['frames']} of {sink['last']} 720p frames through 3 modules in "
              f"{took:.1f} s, none damaged, in order; {missing} missing, all counted "
              f"(drops counted: {detail})")
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
