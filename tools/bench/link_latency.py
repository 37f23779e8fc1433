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

_argv, sys.argv = sys.argv, sys.argv[:1]  # latency.py reads its own argv at import
from latency import decoded_stamps, pct, server_latency  # noqa: E402
sys.argv = _argv


def cell(rtt, loss, seconds):
    with Lab() as lab:
        if rtt:
            for d, seed in (("up", 1), ("down", 2)):
                lab.impair(d, delay=rtt / 2, jitter=rtt / 20, seed=seed)
        if loss:
            lab.loss(loss, "up")
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        try:
            srv.wait(flowing, 20, "media")
            time.sleep(2)
            u0 = k.mod("uplink")["module"]
            srv.record_start()
            time.sleep(seconds)
            rec = stop_recording(srv.admin, SECRET, "cam1")
            u1 = k.mod("uplink")["module"]
            lat, _, _ = server_latency(rec["file"])
            caps = decoded_stamps(rec["file"])
            freeze = max((b - a for a, b in zip(caps, caps[1:])), default=0)
            media = u1["payload_bytes"] - u0["payload_bytes"]
            resent = u1["retransmit_bytes"] - u0["retransmit_bytes"]
            return (pct(lat, 50), pct(lat, 95), pct(lat, 99), rec["units"], len(caps), freeze,
                    100.0 * resent / max(media, 1))
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8)
    a = ap.parse_args()
    print(f"{'RTT ms':>6} {'loss %':>6} | {'median':>7} {'p95':>7} {'p99':>7} ms (capture -> "
          f"Janus) | {'units':>5} {'decoded':>7} {'freeze ms':>9} | {'resent %':>8} | median "
          f"vs clean")
    base = None
    for rtt, loss in [(0, 0)] + [(r, l) for r in (50, 200, 600) for l in (0, 3, 10)]:
        med, p95, p99, units, frames, freeze, resent = cell(rtt, loss, a.seconds)
        base = base or med
        print(f"{rtt:>6} {loss:>6} | {med:>7.1f} {p95:>7.1f} {p99:>7.1f}                    | "
              f"{units:>5} {frames:>7} {freeze:>9.0f} | {resent:>8.1f} | {med / base:.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
