"""The device's byte meter against the carrier's bill over a long run with
faults (issue: within 1 % over 10 minutes of streaming). The bill is the link
lab's nft counters (tests/link/lab.py: every byte entering the link each way,
IP/UDP/TCP headers included); the meter is the uplink's (`outpostctl usage`).

Faults cycle every minute: 3 % loss up (20 s), UDP blocked (media rides the
control connection) then back, an 8 s outage that ends the control connection
(a reconnect follows), a UDP NAT rebinding. Both sides are read at quiet
moments (the uplink's `stop`: tests/link/test_bytes.py says why) at the start
and at the end, and every minute on the run (not quiet: the bill moves while
the meter is read, printed beside).

    OUTPOST_BUILD=build-bench python3 tools/bench/meter_accuracy.py [--minutes 10]
"""
import argparse
import os
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "link"))
from fixture import flowing, lab_spine  # noqa: E402
from test_bytes import _both, _quiet  # noqa: E402


def _err(dev, paid):
    return (dev - paid) / paid * 100 if paid else 0.0


def _row(what, u0, b0, u, b):
    dev = {d: u["total"][d] - u0["total"][d] for d in ("up", "down")}
    paid = {d: b[d] - b0[d] for d in ("up", "down")}
    tot_d, tot_p = sum(dev.values()), sum(paid.values())
    return (f"{what:>12}  up {dev['up']:>10} / {paid['up']:>10.0f} B ({_err(dev['up'], paid['up']):+.3f} %)"
            f"  down {dev['down']:>8} / {paid['down']:>8.0f} B ({_err(dev['down'], paid['down']):+.3f} %)"
            f"  total {_err(tot_d, tot_p):+.3f} %")


def _cycle(lab, k, srv):
    lab.loss(3, "up")
    time.sleep(20)
    lab.loss(0, "up")
    lab.block_udp()
    k.wait(lambda st: k.mod("uplink", st)["module"].get("media_path") == "control", 15,
           "media on the control connection")
    time.sleep(5)
    lab.block_udp(False)
    k.wait(lambda st: k.mod("uplink", st)["module"].get("media_path") == "udp", 20,
           "media back on UDP")
    lab.outage()
    time.sleep(8)
    lab.restore()
    srv.wait(flowing, 20, "media flowing after the outage")
    lab.rebind("udp")
    time.sleep(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--kbps", type=int, default=300)
    a = ap.parse_args()
    with lab_spine("always", bitrate=a.kbps, udp_probe_s=3) as (lab, srv, k):
        srv.wait(flowing, 20, "media flowing")
        u0, b0, _, _ = _quiet(lab, k)
        assert k.send("uplink", "start").returncode == 0
        srv.wait(flowing, 10, "media flowing again")
        t0 = time.monotonic()
        rows = []
        while time.monotonic() - t0 < a.minutes * 60:
            _cycle(lab, k, srv)
            u, b, _, moved = _both(lab, k)
            rows.append(_row(f"{(time.monotonic() - t0) / 60:.1f} min", u0, b0, u, b) +
                        f"  (the bill moved {moved['up']} B up while read)")
            print(rows[-1], flush=True)
        u1, b1, _, _ = _quiet(lab, k)
        print(f"the meter against the bill, {a.kbps} kbit/s, "
              f"{(time.monotonic() - t0) / 60:.1f} minutes of faults (quiet readings at both ends):")
        print(_row("whole run", u0, b0, u1, b1))


if __name__ == "__main__":
    main()
