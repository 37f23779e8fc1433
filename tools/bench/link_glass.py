"""Glass to glass over the link lab (tests/link/lab.py), in Chromium: the
device behind a cellular-like link, Janus on the far side, the real page
watching it (tools/bench/latency_page.mjs; the viewer's own leg is clean).
Per link condition, each `latency` setting of the device in the jcfg side by
side in the same run: smooth (the browser's own jitter buffer: today's
behaviour before the playout-delay extension), low (0/0), auto (what it
chose, from the jitter and loss the ingest saw). Per cell: glass to glass
(median, p95, p99), how evenly frames were shown (intervals over 1.5 frame
intervals), the stamped frames shown of those captured meanwhile, and the
ingest's view (RFC 3550 jitter, packets missing at first).

    OUTPOST_BUILD=build-bench python3 tools/bench/link_glass.py [--seconds 12]
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "link"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fixture import FPS, LabServer, device_kernel, flowing  # noqa: E402
from lab import Lab  # noqa: E402
from spine import WebServer  # noqa: E402

from latency import pct, smoothness  # noqa: E402

# (name, RTT ms split over both directions with 10 % jitter, loss % on the way up)
LINKS = {"clean": ("clean", 0, 0), "lossy": ("50 ms RTT, 1 % loss", 50, 1),
         "harsh": ("200 ms RTT, 3 % loss", 200, 3)}
LINKS = [LINKS[k] for k in os.environ.get("OUTPOST_LINKS", "clean,lossy,harsh").split(",") if k]
SETTINGS = [x for x in os.environ.get("OUTPOST_SETTINGS", "smooth,low,auto").split(",") if x]


def cell(rtt, loss, latency, seconds, kbps):
    with Lab() as lab:
        lab.cellular(rtt, loss)
        srv = LabServer(lab, device={"latency": latency}).start()
        web = WebServer().start()
        k = device_kernel(lab, srv, bitrate=kbps).start()
        try:
            srv.wait(flowing, 20, "media")
            url = (f"http://127.0.0.1:{web.port}/?janus="
                   f"{urllib.parse.quote(srv.janus.url, safe='')}")
            page = subprocess.Popen(["node", os.path.join(ROOT, "tools/bench/latency_page.mjs"),
                                     url, "cam1", str(seconds)], stdout=subprocess.PIPE, text=True,
                                    env=dict(os.environ, OUTPOST_BROWSER_HOSTS=lab.mgmt_ip))
            jitter, missing, received, chosen = [], None, None, set()
            t0 = time.monotonic()
            while page.poll() is None and time.monotonic() - t0 < seconds + 90:
                d = srv.device()
                jitter.append(d["receiver_report"]["jitter_ms"])
                chosen.add(d["latency"]["now"])
                missing, received = d["ingest_loss"]["missing"], d["packets"]
                time.sleep(1)
            out, _ = page.communicate(timeout=30)
            shown = json.loads(out.strip().splitlines()[-1])
            return shown, jitter, missing, received, chosen
        finally:
            k.stop()
            k.cleanup()
            web.stop()
            srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--kbps", type=int, default=300)
    a = ap.parse_args()
    print(f"libaom 640x480@{FPS}, {a.kbps} kbit/s, test pattern, {a.seconds:.0f} s a cell; "
          f"build {os.environ['OUTPOST_BUILD']}")
    print(f"{'link':22s} {'latency':14s} | {'median':>7} {'p95':>7} {'p99':>7} ms | "
          f"{'late':>5} {'shown':>11} | ingest jitter ms (median, max), missing")
    rounds = int(os.environ.get("OUTPOST_ROUNDS", "1"))  # interleaved: the load moves
    for name, rtt, loss in LINKS:
        for latency in SETTINGS * rounds:
            shown, jitter, missing, received, chosen = cell(rtt, loss, latency, a.seconds, a.kbps)
            s = shown["samples"]
            g2g = [x["latencyMs"] for x in s]
            _, late = smoothness(s)
            frames = max(x["frame"] for x in s) - min(x["frame"] for x in s) + 1
            setting = f"{latency} ({'/'.join(sorted(chosen))})" if latency == "auto" else latency
            print(f"{name:22s} {setting:14s} | {pct(g2g, 50):7.1f} {pct(g2g, 95):7.1f} "
                  f"{pct(g2g, 99):7.1f}    | {late:5d} {len(s):5d}/{frames:<5d} | "
                  f"{pct(jitter, 50):.1f}, {max(jitter):.1f}; {missing} of {received}", flush=True)


if __name__ == "__main__":
    main()
