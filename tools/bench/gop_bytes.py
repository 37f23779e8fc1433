"""What the keyframe interval costs on the paid link, now that joins are served
from the plugin's GOP cache (no keyframe per viewer): the stream's bytes per
hour at keyframe intervals of 2 s, 10 s and 60 s, libaom 640x480@30 with its
500 kbit/s CBR target, the test pattern. Release build (build-bench/), the
spine on this machine.

Measured: 227.4-227.7 MB an hour at all three (505-506 kbit/s): CBR holds the
target whatever the interval, and spends it on the test pattern's motion;
keyframes are small at this rate (7.8 KB against 2.0-2.1 KB for the other
frames). At a fixed rate, the keyframe interval and a keyframe per join cost
quality, not bytes; they cost bytes when the encoder undershoots its target
(a still scene), which this pattern does not.

Per interval, over WINDOW seconds (default 120, two 60 s GOPs): the RTP bytes
at the plugin (what the uplink sent, headers included, before SRTP's tag and
UDP/IP: the plugin's own count), per hour; the keyframes and their mean size,
the other frames' mean size (from a recording: each frame's packets by RTP
timestamp, a keyframe by the AV1 aggregation header's N bit); and what a join
would add without the cache: one keyframe (asked for) per viewer who joins.
   OUTPOST_BUILD=build-bench python3 tools/bench/gop_bytes.py [window_s]"""
import os
import struct
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from spine import Spine, stop_recording  # noqa: E402

W, H, FPS, KBPS = 640, 480, 30, 500
WINDOW = float(sys.argv[1]) if len(sys.argv) > 1 else 120.0


def frames_of(mjr):
    """[(bytes, keyframe)] per RTP timestamp, in order, from a recording."""
    data = open(mjr, "rb").read()
    assert data[:8] == b"MJR00002", f"{mjr}: not an MJR v2 file"
    n = struct.unpack(">H", data[8:10])[0]
    at, frames, order = 10 + n, {}, []
    while at + 10 <= len(data) and data[at:at + 4] == b"MEET":
        length = struct.unpack(">H", data[at + 8:at + 10])[0]
        rtp = data[at + 10:at + 10 + length]
        at += 10 + length
        if len(rtp) < 13:
            continue
        ts, seq = struct.unpack(">I", rtp[4:8])[0], struct.unpack(">H", rtp[2:4])[0]
        cc, ext = rtp[0] & 0x0F, rtp[0] & 0x10
        off = 12 + 4 * cc
        if ext and len(rtp) >= off + 4:
            off += 4 + 4 * struct.unpack(">H", rtp[off + 2:off + 4])[0]
        if ts not in frames:
            frames[ts] = [0, False, seq]
            order.append(ts)
        f = frames[ts]
        f[0] += len(rtp)
        if seq <= f[2] and off < len(rtp):  # the frame's first packet: its N bit
            f[1], f[2] = bool(rtp[off] & 0x08), seq
    return [(frames[ts][0], frames[ts][1]) for ts in order]


def run(interval):
    spine = Spine(["cam1"], name="gopbytes").start()
    k = spine.kernel("cam1", "encoder-aom", bitrate=KBPS, width=W, height=H, fps=FPS,
                     keyframe_interval=interval).start()
    try:
        t0 = time.monotonic()
        while spine.status("cam1")["packets"] < 60:
            assert time.monotonic() - t0 < 15, "no media"
            time.sleep(0.1)
        time.sleep(2)
        spine.admin({"request": "record", "secret": spine.secret, "id": "cam1",
                     "action": "start"})
        a, ta = spine.status("cam1"), time.monotonic()
        time.sleep(WINDOW)
        b, tb = spine.status("cam1"), time.monotonic()
        rec = stop_recording(spine.admin, spine.secret, "cam1")
        frames = frames_of(rec["file"])
        keys = [s for s, key in frames if key]
        others = [s for s, key in frames if not key]
        per_hour = (b["bytes"] - a["bytes"]) / (tb - ta) * 3600
        return per_hour, len(keys), (sum(keys) / len(keys) if keys else 0), \
            (sum(others) / len(others) if others else 0), len(frames)
    finally:
        spine.stop()
        spine.cleanup()


def main():
    print(f"libaom 640x480@{FPS}, CBR target {KBPS} kbit/s, test pattern, {WINDOW:.0f} s per "
          f"interval; build {os.environ['OUTPOST_BUILD']}")
    print("keyframe interval   bytes per hour   (kbit/s)   keyframes   mean keyframe   "
          "mean other frame   a join without the cache")
    base = None
    for interval in (2, 10, 60):
        per_hour, nkeys, key_b, other_b, n = run(interval)
        base = base or per_hour
        print(f"{interval:>8} s        {per_hour / 1e6:9.1f} MB      ({per_hour * 8 / 3600 / 1000:5.0f})"
              f"   {nkeys:>5} of {n:<5}  {key_b / 1000:8.1f} KB     {other_b / 1000:8.2f} KB"
              f"        +{key_b / 1000:.1f} KB (a keyframe)   {per_hour / base:.2f}x of 2 s")


if __name__ == "__main__":
    main()
