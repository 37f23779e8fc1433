"""Latency and frame loss over the link lab (tests/link/lab.py), one table:
RTT 50 / 200 / 600 ms (split over both directions by outpost-impair, ±10 %
jitter) against 0 / 3 / 10 % random loss on the way up, libaom at
640x480@30 and 300 kbit/s. Per cell, from a recording of --seconds at
Janus: capture -> arrival at Janus per frame (median, p95, p99; the frame's
capture time from its RTP timestamp, checked against the stamp in its pixels,
as tools/bench/latency.py does), the units recorded and the frames that
decode, the longest freeze, and what loss recovery cost (resent bytes over
media bytes). The baseline is the clean cell (RTT 0, loss 0) of the same run.
The browser's share (jitter buffer, decode, render) is tools/bench/latency.py's.

    OUTPOST_BUILD=build-bench python3 tools/bench/link_latency.py [--seconds 8]
"""
import argparse
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "link"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import SECRET, LabServer, device_kernel, flowing  # noqa: E402
from lab import Lab  # noqa: E402
from spine import stop_recording  # noqa: E402

from latency import decoded_stamps, mjr_arrivals, pct  # noqa: E402


def capture_to_janus(mjr, floor_ms):
    """Per frame: its last packet's arrival at Janus - its capture time (the
    stamp in its pixels; both on this machine's clock). Decoded frames are
    paired with the recording's units by the one shift that makes their RTP
    timestamp steps equal the stamps' steps (the uplink derives the timestamp
    from the capture time, so the right pairing agrees to ~1 ms at every
    frame, a wrong one only where the capture was perfectly regular: then
    the smallest median latency at or above floor_ms, the link's median
    one-way delay, wins: right while the device's own share, ~10 ms, is under
    a frame interval. An absolute capture time in each packet (the latency
    issue's header extension) will make this exact)."""
    arrivals = mjr_arrivals(mjr)
    # units in timestamp (capture) order, as they decode; a resent packet makes
    # a unit complete later than the next ones, so arrival order is not it
    ref = min(arrivals, key=arrivals.get)
    tss = sorted(arrivals, key=lambda ts: ((ts - ref + 2**31) % 2**32) - 2**31)
    unwrapped = [ref + ((ts - ref + 2**31) % 2**32) - 2**31 for ts in tss]
    caps = decoded_stamps(mjr)
    best = None
    for shift in range(-10, 11):
        pairs = list(zip(unwrapped[max(shift, 0):], caps[max(-shift, 0):]))
        if len(pairs) < 10:
            continue
        offs = sorted(t / 90.0 - c for t, c in pairs)
        mid = offs[len(offs) // 2]
        agree = sum(1 for o in offs if abs(o - mid) <= 1.0) / len(offs)
        lat = sorted(arrivals[tss[i]] - (unwrapped[i] / 90.0 - mid) for i in range(len(tss)))
        median = lat[len(lat) // 2]
        if median < floor_ms:
            continue  # faster than the link's own delay: not this pairing
        # a steady capture makes every shift agree alike (>= 80 %): then the smallest
        # latency the link allows is the pairing (the device's own share, ~10 ms
        # on a clean link, is well under a frame interval)
        key = (agree >= 0.8, -median)
        if best is None or key > best[0]:
            best = (key, lat)
    if best is None:
        raise AssertionError("no pairing of frames and units")
    return best[1], caps


def cell(rtt, loss, seconds):
    with Lab() as lab:
        lab.cellular(rtt, loss)
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        try:
            srv.wait(flowing, 20, "media")
            time.sleep(2)
            g0 = srv.device()["ingest_loss"]["given_up"]
            u0 = k.mod("uplink")["module"]
            srv.record_start()
            time.sleep(seconds)
            rec = stop_recording(srv.admin, SECRET, "cam1")
            u1 = k.mod("uplink")["module"]
            given_up = srv.device()["ingest_loss"]["given_up"] - g0
            media = u1["payload_bytes"] - u0["payload_bytes"]
            resent = 100.0 * (u1["retransmit_bytes"] - u0["retransmit_bytes"]) / max(media, 1)
            try:
                lat, caps = capture_to_janus(rec["file"], rtt / 2.0)
            except AssertionError:
                # janus-pp-rec 1.1.2 writes an MP4 without its index when an AV1
                # unit lacks a packet (one given up): nothing to read (or no
                # pairing of frames and units to be had)
                return None, rec["units"], given_up, resent
            freeze = max((b - a for a, b in zip(caps, caps[1:])), default=0)
            return ((pct(lat, 50), pct(lat, 95), pct(lat, 99), len(caps), freeze), rec["units"],
                    given_up, resent)
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    a = ap.parse_args()
    print(f"{'RTT ms':>6} {'loss %':>6} | {'median':>7} {'p95':>7} {'p99':>7} ms capture -> "
          f"Janus | {'units':>5} {'decoded':>7} {'freeze ms':>9} {'given up':>8} | "
          f"{'resent %':>8} | median vs clean")
    base = None
    for rtt, loss in [(0, 0)] + [(r, l) for r in (50, 200, 600) for l in (0, 3, 10)]:
        res, units, given_up, resent = cell(rtt, loss, a.seconds)
        if res is None:
            print(f"{rtt:>6} {loss:>6} | {'MP4 without index (a unit lacks a packet)':>44} | "
                  f"{units:>5} {'-':>7} {'-':>9} {given_up:>8} | {resent:>8.1f} |", flush=True)
            continue
        med, p95, p99, frames, freeze = res
        base = base or med
        print(f"{rtt:>6} {loss:>6} | {med:>7.1f} {p95:>7.1f} {p99:>7.1f}                    | "
              f"{units:>5} {frames:>7} {freeze:>9.0f} {given_up:>8} | {resent:>8.1f} | "
              f"{med / base:.2f}x", flush=True)

if __name__ == "__main__":
    main()
