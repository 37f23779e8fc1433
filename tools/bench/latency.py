"""Glass-to-glass latency: the test pattern's stamp (capture time, written in the
pixels) against the moment the frame is shown, at 640x480@30, 500 kbit/s,
over the whole spine on this machine (release build in build-bench/).

- AV1 (encoder-rav1e, and encoder-aom, the device default), in Chromium: the page's own samples (web/tile.js: the
  expected display time of each frame minus the stamp read from its pixels).
- Server arrival, both codecs, over a recording made at the same time: the
  .mjr keeps each packet's arrival time at Janus; the frame's capture time
  comes from its RTP timestamp (the uplink derives it from the capture time),
  checked against the stamps decoded from the post-processed MP4. H.265 stops
  here: Chromium has no H.265 decoder (../shared/TESTING.md).
- The encoder's own delay (capture -> coded unit, from its status), so the
  transport's and the viewer's shares are visible.
   OUTPOST_BUILD=build-bench python3 tools/bench/latency.py [seconds]"""
import json
import os
import struct
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from spine import Spine, stop_recording  # noqa: E402
from janus import janus_pp_rec  # noqa: E402
from media import decode, read_stamps  # noqa: E402

W, H, FPS, KBPS = 640, 480, 30, 500
SECONDS = 12.0  # per run; main() takes it from the command line


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def summary(values):
    return (f"median {pct(values, 50):6.1f}  p95 {pct(values, 95):6.1f}  "
            f"p99 {pct(values, 99):6.1f} ms  ({len(values)} frames)")


def mjr_arrivals(path):
    """RTP timestamp -> arrival (epoch ms) of the frame's last packet at Janus."""
    data = open(path, "rb").read()
    assert data[:8] == b"MJR00002", f"{path}: not an MJR v2 file"
    n = struct.unpack(">H", data[8:10])[0]
    info = json.loads(data[10:10 + n])
    at, arrivals = 10 + n, {}
    while at + 10 <= len(data) and data[at:at + 4] == b"MEET":
        offset_ms, length = struct.unpack(">IH", data[at + 4:at + 10])
        rtp = data[at + 10:at + 10 + length]
        ts = struct.unpack(">I", rtp[4:8])[0]
        arrivals[ts] = info["u"] / 1000.0 + offset_ms  # the last packet wins
        at += 10 + length
    return arrivals


def decoded_stamps(mjr, w=W, h=H):
    mp4 = mjr[:-4] + ".mp4"
    rc, out = janus_pp_rec(mjr, mp4)
    assert rc == 0, out
    yuv = mp4 + ".yuv"
    rc, err = decode(mp4, None, yuv)
    assert rc == 0, err
    stamps = read_stamps(yuv, w, h)
    os.unlink(yuv)
    return [ms for _, ms in filter(None, stamps)]


def server_arrivals(mjr, w=W, h=H):
    """Per frame of the recording: its capture time (ms, from the RTP timestamp)
    -> the arrival at Janus of its last packet (epoch ms); and how many of the
    decoded stamps agree with the RTP timestamps (+-1 ms), of how many."""
    arrivals = mjr_arrivals(mjr)
    captures = decoded_stamps(mjr, w, h)
    # ts = capture_us * 9 / 100 + offset (mod 2^32), the stamp holds whole ms:
    # for the right pairs, ts - stamp * 90 lies in [offset, offset + 90). Pair
    # every timestamp with every stamp near it in order (the recording may
    # start a few frames apart from the decoded stream) and take the 90-tick
    # bin most pairs fall in: one frame off would be 2970 ticks away.
    tss = sorted(arrivals, key=arrivals.get)
    bins = {}
    for i, ts in enumerate(tss):
        for cap in captures[max(0, i - 10):i + 10]:
            b = ((ts - cap * 90) % 2**32) // 90
            bins[b] = bins.get(b, 0) + 1
    b = max(bins.items(), key=lambda kv: kv[1] + bins.get(kv[0] + 1, 0))[0]
    pairs = [(ts, cap) for i, ts in enumerate(tss) for cap in captures[max(0, i - 10):i + 10]
             if ((ts - cap * 90) % 2**32) // 90 in (b, b + 1)]
    off = min((ts - cap * 90) % 2**32 for ts, cap in pairs)  # the timestamp of a stamp's 0 us
    ref_ts, ref_cap = next((ts, cap) for ts, cap in pairs if (ts - cap * 90) % 2**32 - off < 90)

    def capture_ms(ts):  # 90 kHz timestamps wrap every 13 h: count from the reference
        d = (ts - ref_ts) % 2**32
        return ref_cap + (d - 2**32 if d >= 2**31 else d) / 90.0
    # the stamp holds whole ms, the timestamp 1/90 ms: agreement is to within 1 ms
    at = {capture_ms(ts): arrivals[ts] for ts in arrivals}
    agree = sum(1 for c in captures if any(abs(c - t) <= 1.0 for t in at))
    return at, agree, len(captures), capture_ms


def encoder_delay(kernel):
    enc = kernel.mod("encoder")["module"]
    return enc.get("latency_ms_mean"), enc.get("latency_ms_p99"), enc.get("speed")


def run(encoder, browser, latency="auto", jbt=None, profile=None, settings=None):
    settings = dict(settings or {})  # the encoder's, and width, height, bitrate of the run
    w, h = settings.pop("width", W), settings.pop("height", H)
    spine = Spine(["cam1"], name="lat", latency={"cam1": latency}).start()
    k = spine.kernel("cam1", encoder, bitrate=settings.pop("bitrate", KBPS), width=w, height=h,
                     fps=FPS, profile=profile, **settings).start()
    try:
        t0 = time.monotonic()
        while spine.status("cam1")["packets"] < 60:
            assert time.monotonic() - t0 < 15, "no media"
            time.sleep(0.1)
        page = None
        if browser:
            url = spine.url + ("" if jbt is None else f"&jbt={jbt}")
            page = subprocess.Popen(["node", os.path.join(ROOT, "tools/bench/latency_page.mjs"),
                                     url, "cam1", str(SECONDS)], stdout=subprocess.PIPE,
                                    text=True)
            time.sleep(3)  # the browser's launch and first keyframe
        spine.admin({"request": "record", "secret": spine.secret, "id": "cam1",
                     "action": "start"})
        # The device's stages per frame (the plugin's `timing`: its ring holds
        # ~4 s, and asking keeps the device's lease on), by RTP timestamp.
        timing, t_end = {}, time.monotonic() + SECONDS
        while time.monotonic() < t_end:
            r = spine.admin({"request": "timing", "secret": spine.secret, "id": "cam1"})
            timing.update({f["ts"]: f for f in r["frames"]})
            time.sleep(min(1.0, max(0.0, t_end - time.monotonic())))
        rec = stop_recording(spine.admin, spine.secret, "cam1")
        enc = encoder_delay(k)
        now = spine.status("cam1")["latency"]["now"]
        shown = None
        if page:
            out, _ = page.communicate(timeout=SECONDS + 60)
            shown = json.loads(out.strip().splitlines()[-1])
        at, agree, decoded, capture_ms = server_arrivals(rec["file"], w, h)
        # The recording's timestamps start at 0 (Janus's recorder takes off the
        # first one); the device's are its own: the offset most frames agree on.
        recorded = mjr_arrivals(rec["file"])
        offsets = {}
        for t in timing:
            for m in recorded:
                o = (t - m) % 2**32
                offsets[o] = offsets.get(o, 0) + 1
        off = max(offsets, key=offsets.get) if offsets else 0
        device = {capture_ms((ts - off) % 2**32): f for ts, f in timing.items()}
        print(f"  the device timed {len(timing)} frames (the plugin's `timing`), "
              f"{offsets.get(off, 0)} of them recorded")
        return enc, at, agree, decoded, shown, now, device
    finally:
        spine.stop()
        spine.cleanup()


def breakdown(at, samples, device=None):
    """Per frame shown whose capture time is in the recording: where its time
    went, in ms. The stages add up to glass to glass by construction; the
    device's (from the plugin's `timing`, 2 ms steps) split "to Janus" where
    the frame was timed."""
    rows = []
    for s in samples:
        arrival = next((a for c, a in at.items() if abs(c - s["captureMs"]) <= 1.0), None)
        if arrival is None or s.get("receiveMs") is None or s.get("presentMs") is None:
            continue
        d = next((f for c, f in (device or {}).items() if abs(c - s["captureMs"]) <= 1.0), None)
        rows.append({"capture -> encoder in": d and d["in"],
                     "encode": d and d["coded"] - d["in"],
                     "uplink + pacer": d and d["sent"] - d["coded"],
                     "network": d and arrival - s["captureMs"] - d["sent"],
                     "to Janus": arrival - s["captureMs"],
                     "Janus -> browser": s["receiveMs"] - arrival,
                     "jitter buffer + decode": s["presentMs"] - s["receiveMs"],
                     "decode alone": s["decodeMs"],
                     "decoded -> shown": s["displayMs"] - s["presentMs"],
                     "glass to glass": s["latencyMs"]})
    return rows


def smoothness(samples, fps=FPS):
    """How evenly frames were shown: the intervals between consecutive stamped
    frames' display times (ms), and how many were over 1.5 frame intervals."""
    d = sorted(s["displayMs"] for s in samples)
    gaps = [b - a for a, b in zip(d, d[1:])]
    return gaps, sum(1 for g in gaps if g > 1.5 * 1000 / fps)


# (encoder, latency in the jcfg, the page's jitterBufferTarget[, device.profile[,
# the encoder's settings]]):
# today's behaviour first (the browser's own jitter buffer), then each change
# alone; last the LAN profile (60 fps, 20000 kbit/s at most, unpaced).
RUNS = [("encoder-aom", "smooth", None), ("encoder-aom", "smooth", 0),
        ("encoder-aom", "low", None), ("encoder-rav1e", "low", None), ("encoder-x265", "auto", None),
        ("encoder-aom", "low", None, "lan"),
        ("encoder-aom", "low", None, None, {"width": 1280, "height": 720, "bitrate": 1500}),
        ("encoder-svtav1", "low", None, None, {"width": 1280, "height": 720, "bitrate": 1500}),
        ("encoder-aom", "low", None, None, {"speed": "auto"}),
        ("encoder-aom", "low", None, None,
         {"width": 1280, "height": 720, "bitrate": 1500, "speed": "auto"})]


def main():
    global SECONDS
    SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else SECONDS
    print(f"640x480@{FPS}, {KBPS} kbit/s, test pattern, {SECONDS:.0f} s per run; "
          f"build {os.environ['OUTPOST_BUILD']}")
    pick = os.environ.get("OUTPOST_RUNS")  # e.g. OUTPOST_RUNS=0,2: those of RUNS only
    runs = [RUNS[int(i)] for i in pick.split(",")] if pick else RUNS
    # OUTPOST_ROUNDS=N: every run N times, interleaved (a shared 2-core machine's
    # load moves between runs: one 12 s run of each is not a comparison)
    runs = runs * int(os.environ.get("OUTPOST_ROUNDS", "1"))
    table = []
    for encoder, latency, jbt, *rest in runs:
        profile, settings = (list(rest) + [None, None])[:2]
        browser = encoder != "encoder-x265"  # Chromium has no H.265 decoder here
        (emean, ep99, speed), at, agree, decoded, shown, now, device = run(encoder, browser, latency,
                                                                    jbt, profile, settings)
        lat = [a - c for c, a in at.items()]
        name = f"{encoder}, latency {latency} ({now})" + (
            f", jitterBufferTarget {jbt} ms" if jbt is not None else "") + (
            f", profile {profile}" if profile else "") + (
            "".join(f", {k} {v}" for k, v in settings.items()) if settings else "")
        print(f"{name}:\n  encoder's own delay (capture -> coded unit, its status): mean "
              f"{emean:.1f} ms, p99 {ep99:.1f} ms; speed {speed} at the end")
        print(f"  capture -> at Janus (last packet): {summary(lat)}; "
              f"{agree}/{decoded} decoded stamps agree with the RTP timestamps (+-1 ms)")
        if not shown:
            continue
        g2g = [s["latencyMs"] for s in shown["samples"]]
        st = shown["stats"]
        gaps, stutters = smoothness(shown["samples"], 60 if profile == "lan" else FPS)
        print(f"  glass to glass in Chromium:        {summary(g2g)}; "
              f"{st['framesDecoded'] / st['seconds']:.1f} fps decoded, "
              f"{st['packetsLost']} packets lost")
        print(f"  shown every {pct(gaps, 50):.1f} ms (p95 {pct(gaps, 95):.1f}, max {max(gaps):.1f}); "
              f"{stutters} intervals over 1.5 frames")
        rows = breakdown(at, shown["samples"], device)
        if rows:
            timed = sum(1 for r in rows if r["encode"] is not None)
            print(f"  per frame, median (p99) ms over {len(rows)} frames ({timed} timed by the "
                  f"device):")
            for stage in rows[0]:
                v = [r[stage] for r in rows if r[stage] is not None]
                if v:
                    print(f"    {stage:24s} {pct(v, 50):7.1f} ({pct(v, 99):.1f})")
        share = [x["displayMs"] - x["receiveMs"] for x in shown["samples"]
                 if x.get("receiveMs") is not None]
        table.append((name, pct(g2g, 50), pct(g2g, 95), pct(g2g, 99), stutters, len(g2g),
                      pct(share, 50) if share else float("nan")))
    if table:
        print("\nglass to glass, side by side (ms); the browser's share: received -> shown:")
        for name, m, p95, p99, stutters, n, share in table:
            print(f"  {name:60s} median {m:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}  "
                  f"browser {share:5.1f}  ({n} frames, {stutters} late intervals)")
        names = list(dict.fromkeys(t[0] for t in table))
        if len(table) > len(names):
            print("medians of the rounds' medians:")
            for name in names:
                rows = [t for t in table if t[0] == name]
                med = lambda i: sorted(r[i] for r in rows)[len(rows) // 2]  # noqa: E731
                print(f"  {name:60s} median {med(1):6.1f}  p95 {med(2):6.1f}  p99 {med(3):6.1f}  "
                      f"browser {med(6):5.1f}  ({len(rows)} rounds)")


if __name__ == "__main__":
    main()
