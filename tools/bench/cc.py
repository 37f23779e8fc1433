"""Congestion control against capacity traces in the link lab, side by side
with today's fixed bitrate in the same run (issue 14's benchmark).

Two traces on the uplink (tbf, a 200 ms modem buffer):
  steps:    2 Mbit/s -> 300 k -> 1 M -> 150 k -> 2 M, 24 s each (2 minutes);
  cellular: a seeded walk between 150 kbit/s and 3 Mbit/s, a new capacity every
            2 s (x0.5 .. x2 of the last, now and then a deep fade), 60 s.
Each runs twice: the uplink with congestion control (the operator's 1500 kbit/s
as the maximum), and with a fixed 1500 kbit/s (congestion_control = false).
Sampled every 0.2 s: the capacity, the device's send rate (the lab's bill), the
plugin's receive rate, the controller's target and estimate (the uplink's
status, a second behind), the modem's queue delay (tc backlog / rate); the
whole run is recorded and each unit judged decodable or not (tests/link/mjr.py).

Prints per run: link utilisation (bytes the plugin received / what the capacity
allowed), the queue delay's p50/p95, units decodable of recorded, the longest
freeze, the device's bytes (the bill, both ways); and writes a PNG per trace
(matplotlib, Debian's python3: /usr/bin/python3) and the samples as JSON.

    OUTPOST_BUILD=build-bench python3 tools/bench/cc.py [--out DIR] [--trace steps|cellular]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "link"))
from fixture import flowing, lab_spine  # noqa: E402
from lab import bill_bytes  # noqa: E402
from mjr import decodable  # noqa: E402

MAX_KBPS = 1500
EVERY = 0.2


def trace_steps():
    return [(24 * i, c) for i, c in enumerate([2000, 300, 1000, 150, 2000])], 120


def trace_cellular(seed=14):
    rnd = random.Random(seed)
    c, out = 1000.0, []
    for i in range(30):
        out.append((2 * i, int(c)))
        c = 200 if rnd.random() < 0.1 else c * 2 ** rnd.uniform(-1, 1)
        c = min(3000, max(150, c))
    return out, 60


def run(trace, duration, cc):
    rows = []
    with lab_spine("always", bitrate=MAX_KBPS, congestion_control=cc) as (lab, srv, k):
        srv.wait(flowing, 20, "media flowing")
        lab.rate("up", trace[0][1])
        time.sleep(2)
        srv.record_start()
        time.sleep(1)
        b0 = lab.bill()
        t0 = time.monotonic()
        steps = list(trace)
        cap = steps[0][1]
        prev = (t0, bill_bytes(b0, "up", "udp"), srv.device()["bytes"])
        while time.monotonic() < t0 + duration:
            now = time.monotonic() - t0
            while steps and steps[0][0] <= now:
                cap = steps.pop(0)[1]
                lab.rate("up", cap)
            q = lab.qdisc("up") or {"backlog": 0, "rate_kbit": cap}
            t = time.monotonic()
            up, got = bill_bytes(lab.bill(), "up", "udp"), srv.device()["bytes"]
            u = k.mod("uplink")["module"].get("cc") or {}
            dt = t - prev[0]
            rows.append({"t": round(now, 2), "capacity": cap,
                         "sent": (up - prev[1]) * 8 / 1000 / dt,
                         "received": (got - prev[2]) * 8 / 1000 / dt,
                         "target": u.get("target_kbps"), "estimate": u.get("estimate_kbps"),
                         "queue_ms": q["backlog"] * 8 / max(q["rate_kbit"], 1)})
            prev = (t, up, got)
            time.sleep(max(0.0, EVERY - (time.monotonic() - t)))
        spent = bill_bytes(lab.bill()) - bill_bytes(b0)
        mp4, _ = srv.record_stop()
        units = decodable(mp4[:-4] + ".mjr")
    return rows, units, spent


def summary(rows, units, spent, duration):
    allowed = sum(r["capacity"] for r in rows) * EVERY  # kbit the link could carry
    got = sum(r["received"] for r in rows) * EVERY
    q = sorted(r["queue_ms"] for r in rows)
    shown = [ms for ms, ok in units if ok]
    ends = shown + ([units[-1][0]] if units else [])
    freeze = max((b - a for a, b in zip(ends, ends[1:])), default=0)
    return {"utilisation": got / allowed if allowed else 0,
            "queue_p50": q[len(q) // 2] if q else 0,
            "queue_p95": q[min(len(q) - 1, int(0.95 * len(q)))] if q else 0,
            "decodable": len(shown), "units": len(units), "freeze_ms": freeze,
            "bytes": spent, "duration": duration}


PLOT = r"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
d = json.load(open(sys.argv[1]))
fig, ax = plt.subplots(3, 2, figsize=(14, 9), sharex=True)
for col, name in enumerate(("fixed 1500 kbit/s", "congestion control")):
    rows = d[name]["rows"]
    t = [r["t"] for r in rows]
    a = ax[0][col]
    a.step(t, [r["capacity"] for r in rows], where="post", label="capacity", color="black")
    a.plot(t, [r["sent"] for r in rows], label="sent (bill)")
    a.plot(t, [r["received"] for r in rows], label="received (plugin)")
    if any(r["target"] for r in rows):
        a.plot(t, [r["target"] or 0 for r in rows], label="target", linestyle="--")
        a.plot(t, [r["estimate"] or 0 for r in rows], label="estimate", linestyle=":")
    a.set_ylabel("kbit/s"); a.set_title(name); a.legend(fontsize=7)
    ax[1][col].plot(t, [r["queue_ms"] for r in rows], color="tab:red")
    ax[1][col].set_ylabel("modem queue, ms")
    u = d[name]["units"]
    per_s = {}
    for ms, ok in u:
        per_s.setdefault(ms // 1000, 0)
        per_s[ms // 1000] += 1 if ok else 0
    ax[2][col].bar(list(per_s), list(per_s.values()), width=0.9)
    ax[2][col].set_ylabel("frames decodable / s"); ax[2][col].set_xlabel("s")
fig.suptitle(d["trace"])
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=90)
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=tempfile.mkdtemp(prefix="outpost-cc-"))
    ap.add_argument("--trace", choices=("steps", "cellular"), action="append")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    traces = {"steps": trace_steps, "cellular": trace_cellular}
    print(f"{'trace':9} {'uplink':19} | {'utilisation':>11} {'queue p50':>9} {'p95':>6} | "
          f"{'decodable':>13} {'longest freeze':>14} | {'bytes':>10} {'vs fixed':>8}")
    for name in args.trace or ["steps", "cellular"]:
        trace, duration = traces[name]()
        data = {"trace": f"{name}: {trace}"}
        base = None
        for label, cc in (("fixed 1500 kbit/s", False), ("congestion control", True)):
            rows, units, spent = run(trace, duration, cc)
            s = summary(rows, units, spent, duration)
            data[label] = {"rows": rows, "units": units, "summary": s}
            base = base or s["bytes"]
            print(f"{name:9} {label:19} | {100 * s['utilisation']:10.1f}% {s['queue_p50']:8.0f}ms "
                  f"{s['queue_p95']:5.0f}ms | {s['decodable']:6d} of {s['units']:<5d} "
                  f"{s['freeze_ms']:12d}ms | {s['bytes']:10d} {s['bytes'] / base:7.2f}x",
                  flush=True)
        js = os.path.join(args.out, f"cc-{name}.json")
        png = os.path.join(args.out, f"cc-{name}.png")
        json.dump(data, open(js, "w"))
        r = subprocess.run(["/usr/bin/python3", "-c", PLOT, js, png], capture_output=True,
                           text=True)
        print(f"          plot: {png}" if r.returncode == 0 else f"          no plot: {r.stderr[-300:]}")


if __name__ == "__main__":
    main()
