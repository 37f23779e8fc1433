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
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0


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


def decoded_stamps(mjr):
    mp4 = mjr[:-4] + ".mp4"
    rc, out = janus_pp_rec(mjr, mp4)
    assert rc == 0, out
    yuv = mp4 + ".yuv"
    rc, err = decode(mp4, None, yuv)
    assert rc == 0, err
    stamps = read_stamps(yuv, W, H)
    os.unlink(yuv)
    return [ms for _, ms in filter(None, stamps)]


def server_latency(mjr):
    """Per frame: arrival at Janus - capture time, pairing RTP timestamps with stamps."""
    arrivals = mjr_arrivals(mjr)
    captures = decoded_stamps(mjr)
    # ts = capture_us * 9 / 100 + offset (mod 2^32): find the offset from the pairs
    # that agree, then every frame of the recording has its capture time.
    offsets = {}
    tss = sorted(arrivals, key=arrivals.get)
    for ts, cap in zip(tss, captures):
        off = (ts - cap * 90) % 2**32
        offsets[off] = offsets.get(off, 0) + 1
    off = max(offsets.items(), key=lambda kv: kv[1])[0]
    ref_ts, ref_cap = next((ts, cap) for ts, cap in zip(tss, captures)
                           if (ts - cap * 90) % 2**32 == off)

    def capture_ms(ts):  # 90 kHz timestamps wrap every 13 h: count from the reference
        d = (ts - ref_ts) % 2**32
        return ref_cap + (d - 2**32 if d >= 2**31 else d) / 90.0
    # the stamp holds whole ms, the timestamp 1/90 ms: agreement is to within 1 ms
    from_ts = [capture_ms(ts) for ts in arrivals]
    agree = sum(1 for c in captures if any(abs(c - t) <= 1.0 for t in from_ts))
    lat = [arrivals[ts] - capture_ms(ts) for ts in arrivals]
    return lat, agree, len(captures)


def encoder_delay(kernel):
    enc = kernel.mod("encoder")["module"]
    return enc.get("latency_ms_mean"), enc.get("latency_ms_p99")


def run(encoder, browser):
    spine = Spine(["cam1"], name="lat").start()
    k = spine.kernel("cam1", encoder, bitrate=KBPS, width=W, height=H, fps=FPS).start()
    try:
        t0 = time.monotonic()
        while spine.status("cam1")["packets"] < 60:
            assert time.monotonic() - t0 < 15, "no media"
            time.sleep(0.1)
        page = None
        if browser:
            page = subprocess.Popen(["node", os.path.join(ROOT, "tools/bench/latency_page.mjs"),
                                     spine.url, "cam1", str(SECONDS)], stdout=subprocess.PIPE,
                                    text=True)
            time.sleep(3)  # the browser's launch and first keyframe
        spine.admin({"request": "record", "secret": spine.secret, "id": "cam1",
                     "action": "start"})
        time.sleep(SECONDS)
        rec = stop_recording(spine.admin, spine.secret, "cam1")
        enc = encoder_delay(k)
        shown = None
        if page:
            out, _ = page.communicate(timeout=SECONDS + 60)
            shown = json.loads(out.strip().splitlines()[-1])
        lat, agree, decoded = server_latency(rec["file"])
        return enc, lat, agree, decoded, shown
    finally:
        spine.stop()
        spine.cleanup()


def main():
    print(f"640x480@{FPS}, {KBPS} kbit/s, test pattern, {SECONDS:.0f} s per encoder; "
          f"build {os.environ['OUTPOST_BUILD']}")
    for encoder, browser in (("encoder-rav1e", True), ("encoder-aom", True), ("encoder-x265", False)):
        (emean, ep99), lat, agree, decoded, shown = run(encoder, browser)
        print(f"{encoder}: encoder's own delay (capture -> coded unit, its status): mean "
              f"{emean:.1f} ms, p99 {ep99:.1f} ms")
        print(f"  capture -> at Janus (last packet): {summary(lat)}; "
              f"{agree}/{decoded} decoded stamps agree with the RTP timestamps (+-1 ms)")
        if shown:
            g2g = [s["latencyMs"] for s in shown["samples"]]
            st = shown["stats"]
            print(f"  glass to glass in Chromium:        {summary(g2g)}; "
                  f"{st['framesDecoded'] / st['seconds']:.1f} fps decoded, "
                  f"{st['packetsLost']} packets lost")
            print(f"  shares (medians): encoder {emean:.0f} ms, network + Janus "
                  f"{pct(lat, 50) - emean:.0f} ms, browser (jitter buffer, decode, show) "
                  f"{pct(g2g, 50) - pct(lat, 50):.0f} ms")


if __name__ == "__main__":
    main()
