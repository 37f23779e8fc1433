"""Capture -> next module under the kernel: kill -9 the capture module
mid-stream; frames resume by themselves and the frame numbers (and the stamps
drawn in the pixels) show the outage as a gap: no repeats, nothing backwards.
test-relay stands where the encoder will."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kernel"))
from harness import BIN, Kernel, module, run_cases  # noqa: E402

W, H, FPS = 320, 240, 30
FRAME = W * H * 3 // 2


def test_kill9_capture_shows_an_honest_gap():
    tmp = tempfile.mkdtemp(prefix="outpost-chain-", dir="/dev/shm")
    dump = os.path.join(tmp, "dump.raw")
    k = Kernel([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
                module("encoder", "test-relay", pattern=False),
                module("sink", "test-sink", pattern=False, dump=dump, dump_frames=400)],
               name="chain").start()
    try:
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) >= 60, 10, "60 frames")
        before = k.pids()
        t_kill = time.time()
        os.kill(before["capture"], signal.SIGKILL)
        n_kill = k.mod("sink")["frames_in"]
        st, took = k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) >= n_kill + 60, 10,
                          "60 frames after the restart")
        assert k.mod("capture", st)["pid"] != before["capture"]
        assert k.mod("encoder", st)["pid"] == before["encoder"]
        meta = [line.split() for line in open(dump + ".txt")]
        numbers = [int(m[0]) for m in meta]
        times = [int(m[1]) for m in meta]
        steps = [b - a for a, b in zip(numbers, numbers[1:])]
        assert all(s >= 1 for s in steps), f"numbers repeat or go backwards: {steps}"
        big = [(i, s) for i, s in enumerate(steps) if s > 3]
        assert len(big) == 1, f"want one gap (the restart), got {big}"
        i, gap = big[0]
        outage = (times[i + 1] - times[i]) / 1e6
        expect = round(outage * FPS)
        assert abs(gap - expect) <= 1, f"gap of {gap} numbers for {outage:.3f} s ({expect})"
        assert times[i] / 1e6 < t_kill + 0.1 < times[i + 1] / 1e6 + 0.1
        # The stamps in the pixels say the same as the metadata, across the restart.
        raw = open(dump, "rb").read()[:len(meta) * FRAME]  # the sink may be a frame ahead
        r = subprocess.run([os.path.join(BIN, "stamp-read"), f"{W}x{H}", "-"], input=raw,
                           capture_output=True, check=True)
        r.stdout = r.stdout.decode()
        stamps = [line.split() for line in r.stdout.splitlines()]
        assert len(stamps) == len(meta), (len(stamps), len(meta))
        for s, n, t in zip(stamps, numbers, times):
            assert s[1] != "none" and int(s[1]) == n & 0xFFFFFFFF and int(s[2]) == t // 1000, \
                f"stamp {s} vs number {n} time {t}"
        print(f"     outage {outage * 1000:.0f} ms = a gap of {gap} frame numbers "
              f"({len(meta)} frames, stamps agree); back {took:.2f} s after kill -9")
    finally:
        k.stop()
        k.check_clean_log()
        k.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


run_cases([test_kill9_capture_shows_an_honest_gap])
