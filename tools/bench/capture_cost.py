"""Capture cost per frame of each source, read from the modules' own status
while they run under a release kernel (writing into the real ring slot), with
a memcpy of the same frame size timed by the y4m module as the baseline.
   OUTPOST_BUILD=build-bench python3 tools/bench/capture_cost.py"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "kernel"))
from harness import Kernel, module  # noqa: E402


def run(src, seconds=4):
    k = Kernel([src, module("sink", "test-sink", pattern=False)], name="cost").start()
    try:
        time.sleep(seconds)
        return k.mod("capture")["module"]
    finally:
        k.stop()
        k.cleanup()


for w, h in ((640, 480), (1280, 720)):
    t = run(module("capture", "capture-testsrc", width=w, height=h, fps=30))
    with tempfile.TemporaryDirectory(dir="/dev/shm") as d:
        clip = os.path.join(d, "clip.y4m")
        subprocess.run(["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i",
                        f"testsrc2=size={w}x{h}:rate=30", "-frames:v", "60", "-pix_fmt",
                        "yuv420p", clip], check=True)
        y = run(module("capture", "capture-y4m", file=clip))
    print(f"{w}x{h}: capture-testsrc draw {t['draw_us_mean']:.0f} us/frame; "
          f"capture-y4m copy (memcpy from the mapped file) {y['copy_us_mean']:.0f} us/frame")
