"""Recovery after an outage, in the link lab (tests/link/lab.py): the time from
the link coming back to fresh media at Janus, for outages of 5 s and 30 s
(and 300 s with --long), median over --runs runs. The baseline runs through
the same outage in the same lab at the same time: a ZeroMQ DEALER -> ROUTER
pair (pyzmq, Debian's python3-zmq) with heartbeats (1 s / 3 s) and libzmq's
defaults for reconnecting (ZMQ_RECONNECT_IVL 100 ms, no ZMQ_RECONNECT_IVL_MAX,
no ZMQ_CONNECT_TIMEOUT), the DEALER sending a message every 100 ms: its
recovery is the first message after the link returns.

    OUTPOST_BUILD=build-bench python3 tools/bench/link_recovery.py [--runs 3] [--long]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "link"))
from fixture import LabServer, device_kernel, flowing  # noqa: E402
from lab import SERVER_IP, Lab  # noqa: E402

DEBIAN_PY = "/usr/bin/python3"  # with python3-zmq
ROUTER = r"""
import sys, time, zmq
c = zmq.Context(); r = c.socket(zmq.ROUTER)
r.setsockopt(zmq.HEARTBEAT_IVL, 1000); r.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
r.bind("tcp://0.0.0.0:%s" % sys.argv[1])
while True:
    r.recv_multipart()
    print(time.clock_gettime(time.CLOCK_MONOTONIC), flush=True)
"""
DEALER = r"""
import sys, time, zmq
c = zmq.Context(); d = c.socket(zmq.DEALER)
d.setsockopt(zmq.HEARTBEAT_IVL, 1000); d.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
d.setsockopt(zmq.IMMEDIATE, 1); d.setsockopt(zmq.SNDHWM, 1)
d.connect("tcp://%s:%s" % (sys.argv[1], sys.argv[2]))
while True:
    try:
        d.send(b"x", zmq.NOBLOCK)
    except zmq.Again:
        pass
    time.sleep(0.1)
"""


def _baseline(lab, port):
    """Starts the pair; returns (router Popen, dealer Popen)."""
    r = lab.popen("srv", [DEBIAN_PY, "-c", ROUTER, str(port)], stdout=subprocess.PIPE, text=True)
    d = lab.popen("dev", [DEBIAN_PY, "-c", DEALER, SERVER_IP, str(port)])
    return r, d


def one_run(seconds):
    with Lab() as lab:
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        r, dz = _baseline(lab, 7999)
        try:
            srv.wait(flowing, 15, "media")
            first = r.stdout.readline()
            assert first, "the baseline pair never connected"
            time.sleep(2)
            lab.outage()
            time.sleep(seconds)
            lab.restore()
            t_back = time.clock_gettime(time.CLOCK_MONOTONIC)
            p0 = srv.device()["packets"]
            _, ours = srv.wait(lambda d: flowing(d) and d["packets"] > p0, 120, "media back",
                               interval=0.02)
            # the baseline: the first message the ROUTER got after the link returned
            base = None
            deadline = time.monotonic() + 180
            while base is None and time.monotonic() < deadline:
                line = r.stdout.readline()
                if line and float(line) >= t_back:
                    base = float(line) - t_back
            return ours, base
        finally:
            dz.kill()
            r.kill()
            dz.wait()
            r.wait()
            k.stop()
            k.cleanup()
            srv.cleanup()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--long", action="store_true", help="also a 5-minute outage")
    a = ap.parse_args()
    if not os.path.exists(DEBIAN_PY) or subprocess.run([DEBIAN_PY, "-c", "import zmq"]).returncode:
        sys.exit("link_recovery: needs Debian's python3-zmq (apt-get install python3-zmq)")
    print(f"{'outage':>8} {'runs':>4} {'ours median':>12} {'zmq defaults median':>20} {'ratio':>6}")
    for seconds in [5, 30] + ([300] if a.long else []):
        ours, base = [], []
        for _ in range(a.runs):
            o, b = one_run(seconds)
            ours.append(o)
            if b is not None:
                base.append(b)
        mo = statistics.median(ours)
        mb = statistics.median(base) if base else float("nan")
        print(f"{seconds:>7}s {a.runs:>4} {mo:>11.2f}s {mb:>19.2f}s {mb / mo:>6.1f}  "
              f"(ours {', '.join(f'{x:.2f}' for x in ours)}; zmq "
              f"{', '.join(f'{x:.2f}' for x in base)}{'; some never came back' if len(base) < a.runs else ''})",
              flush=True)


if __name__ == "__main__":
    main()
