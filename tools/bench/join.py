"""A viewer joining, seen in Chromium (the stamp in the pixels): the plugin's
GOP cache (the cached GOP fast-forwarded, joins.c) against today's way, a
keyframe request to the device (the cache off: gop_cache_kb = 0), at the
device's keyframe intervals of 2 s and 10 s. 640x480@30, libaom at 500 kbit/s,
release build (build-bench/), on this machine.

Per setting, JOINS joins at spread phases of the GOP, each printed as:
- first frame: from the page sending `start` to its first frame shown;
- live after: from `start` until the frames shown stay within one frame
  interval (33 ms) of the latency of a viewer already watching (page A,
  sampled just before): the first 500 ms window from which on every window's
  median is;
- latency over the first 5 s, per second (median of the frames shown);
- keyframe requests the join sent to the device, and the device's keyframes;
- the second page's receiver over its whole join (getStats): mean jitter
  buffer delay and decode time per frame, frames dropped.
   OUTPOST_BUILD=build-bench python3 tools/bench/join.py [joins]"""
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from spine import Spine  # noqa: E402

W, H, FPS, KBPS = 640, 480, 30, 500
JOINS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
SECONDS = 5
FRAME_MS = 1000 / FPS


def live_after(join, live_ms):
    """ms from start until the viewer is at live latency: the start of the first
    500 ms window (sliding by 100 ms) from which on every window's median is
    within a frame interval of the live viewer's (single late frames happen to
    any viewer)."""
    b, s0 = join["b"], join["startSentAt"]
    limit = live_ms + FRAME_MS
    good_from = None
    for t in range(0, SECONDS * 1000 - 400, 100):
        lat = [s["latencyMs"] for s in b if s0 + t <= s["displayMs"] < s0 + t + 500]
        ok = bool(lat) and statistics.median(lat) <= limit
        if not ok:
            good_from = None
        elif good_from is None:
            good_from = t
    return float("nan") if good_from is None else good_from


def per_second(join):
    out = []
    for sec in range(SECONDS):
        lo, hi = join["startSentAt"] + sec * 1000, join["startSentAt"] + (sec + 1) * 1000
        lat = [s["latencyMs"] for s in join["b"] if lo <= s["displayMs"] < hi]
        out.append(f"{statistics.median(lat):5.0f}" if lat else "    -")
    return " ".join(out)


def run(gop_s, cache):
    general = {} if cache else {"gop_cache_kb": 0}
    spine = Spine(["cam1"], name="join", general=general).start()
    k = spine.kernel("cam1", "encoder-aom", bitrate=KBPS, width=W, height=H, fps=FPS,
                     keyframe_interval=gop_s).start()
    rows = []
    try:
        t0 = time.monotonic()
        while spine.status("cam1")["packets"] < 60:
            assert time.monotonic() - t0 < 15, "no media"
            time.sleep(0.1)
        # Joins at phases spread over the GOP: wait a GOP and a fraction more each time.
        wait_ms = int(gop_s * 1000 * (1 + 1 / (JOINS + 1)))
        before = spine.status("cam1")
        page = subprocess.Popen(["node", os.path.join(ROOT, "tools/bench/join_page.mjs"),
                                 spine.url, "cam1", str(JOINS), str(wait_ms), str(SECONDS)],
                                stdout=subprocess.PIPE, text=True)
        out, _ = page.communicate(timeout=60 + JOINS * (wait_ms / 1000 + SECONDS + 20))
        after = spine.status("cam1")
        joins = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        for j in joins:
            live = statistics.median(s["latencyMs"] for s in j["a"]) if j["a"] else float("nan")
            st = j.get("stats") or {}
            n = st.get("jitterBufferEmittedCount") or 0
            recv = (f"jitter buffer {st['jitterBufferDelay'] / n * 1000:.0f} ms/frame, decode "
                    f"{st['totalDecodeTime'] / max(1, st['framesDecoded']) * 1000:.1f} ms/frame, "
                    f"{st.get('framesDropped', 0)} dropped") if n else ""
            rows.append((j["firstFrameAt"] - j["startSentAt"], live_after(j, live), live,
                         per_second(j), recv))
        g0, g1 = before.get("gop_cache", {}), after.get("gop_cache", {})
        extra = (f"served from the cache {g1.get('joins', 0) - g0.get('joins', 0)}, replays "
                 f"{g1.get('replays', 0) - g0.get('replays', 0)}, misses "
                 f"{g1.get('misses', 0) - g0.get('misses', 0)}" if cache else "no cache")
        return rows, after["keyframe_requests"] - before["keyframe_requests"], \
            after["keyframes"] - before["keyframes"], extra
    finally:
        spine.stop()
        spine.cleanup()


def main():
    print(f"640x480@{FPS}, libaom {KBPS} kbit/s, {JOINS} joins per setting; "
          f"build {os.environ['OUTPOST_BUILD']}")
    print("GOP   join by            first frame  live after  live latency  "
          "latency in s 1..5 after start (median, ms)")
    for gop_s in (2, 10):
        for cache in (True, False):
            rows, reqs, keys, extra = run(gop_s, cache)
            how = "GOP cache" if cache else "keyframe request"
            for first, live_at, live, sec, recv in rows:
                print(f"{gop_s:>2} s  {how:<17} {first:8.0f} ms {live_at:8.0f} ms "
                      f"{live:9.0f} ms    {sec}   {recv}")
            print(f"       -> keyframe requests to the device {reqs}, device keyframes "
                  f"{keys} over the run ({extra})")


if __name__ == "__main__":
    main()
