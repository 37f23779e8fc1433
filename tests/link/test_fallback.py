"""UDP blocked: the media rides the control connection (tests/link/lab.py).

The uplink sends SRTP over UDP while authenticated SRTCP comes back over UDP;
after ~3 s without it, and once the control link has answered a sender report
sent over it, the same SRTP packets go over the CURVE control connection and a
keyframe follows; a sender report over UDP every udp_probe_s finds UDP again.

1. Streaming over UDP, the encoder frozen for 4 s (no media, UDP fine: the
   plugin answers the sender reports, no switch); then every UDP datagram
   dropped by the carrier: fresh media reaches the plugin over the control
   connection within 5 s of the block, the plugin's feedback goes back that
   way, and a recording made afterwards decodes. The wire's bytes per
   second, TCP on the control path against UDP (+ the control link's TCP)
   before the block, same encoder bitrate, are printed.
2. UDP let through again (udp_probe_s = 3): the media is back on UDP within
   about two probe intervals, and the device counted both switches.
3. A device whose network never passed UDP: media through within 5 s of its
   session."""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture import FPS, H, W, LabServer, device_kernel, flowing  # noqa: E402
from harness import run_cases  # noqa: E402
from lab import Lab, bill_diff  # noqa: E402
from media import decode, read_stamps  # noqa: E402

BITRATE = 300  # kbit/s, the encoder's target on both paths
SWITCH_S = 5.0  # the brief: media over the control connection within this of the block


def _on(path):
    """Fresh media (the last 500 ms) arriving over path ("udp" or "control")."""
    return lambda d: flowing(d) and d["media_path"] == path


def _uplink(k):
    return k.mod("uplink")["module"]


def _uplink_on(k, path, what):
    """The uplink's status once it says media takes path (its status reaches
    the kernel within a second or so)."""
    st, _ = k.wait(lambda st: k.mod("uplink", st)["module"].get("media_path") == path, 5, what)
    return k.mod("uplink", st)["module"]


def _rate(lab, k, seconds):
    """Bytes per second on the wire each way and protocol over `seconds`, and
    the media payload bytes per second the uplink sent meanwhile."""
    b0, u0, t0 = lab.bill(), _uplink(k), time.monotonic()
    time.sleep(seconds)
    b1, u1, t1 = lab.bill(), _uplink(k), time.monotonic()
    paid = bill_diff(b1, b0)
    dt = t1 - t0
    per_s = {d: {p: paid[d][p][0] / dt for p in paid[d]} for d in paid}
    return per_s, (u1["payload_bytes"] - u0["payload_bytes"]) / dt


def _switch_to_control(lab, srv):
    """Blocks UDP; returns the seconds until fresh media came over the control
    connection (the device summary at that moment too)."""
    before = srv.device()["control_packets"]
    lab.block_udp()
    t0 = time.monotonic()
    d, _ = srv.wait(lambda d: _on("control")(d) and d["control_packets"] > before, 10,
                    "media over the control connection", interval=0.02)
    return time.monotonic() - t0, d


def test_udp_blocked_midstream():
    with Lab() as lab:
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv, bitrate=BITRATE).start()
        try:
            srv.wait(_on("udp"), 15, "media over UDP")
            # No media for 4 s (the encoder stopped; the kernel may restart it):
            # UDP is not blocked for that, the media stays there.
            enc = k.pids()["encoder"]
            os.kill(enc, signal.SIGSTOP)
            time.sleep(4)
            try:
                os.kill(enc, signal.SIGCONT)
            except ProcessLookupError:
                pass  # restarted meanwhile
            srv.wait(_on("udp"), 10, "media over UDP again after the encoder's pause")
            time.sleep(2)  # the keyframe after the pause through, the rate settled
            u = _uplink(k)
            assert u["path_switches"] == 0 and u["control_asks"] == 0, u
            udp, udp_payload = _rate(lab, k, 4)
            took, _ = _switch_to_control(lab, srv)
            assert took <= SWITCH_S, f"media over the control connection {took:.2f} s after the block"
            u = _uplink_on(k, "control", "the uplink saying so")
            assert u["path_switches"] >= 1, u
            time.sleep(1)  # the keyframe after the switch is through
            ctl, ctl_payload = _rate(lab, k, 4)
            srv.record_start()
            time.sleep(4)
            mp4, units = srv.record_stop()
            yuv = mp4 + ".yuv"
            rc, err = decode(mp4, None, yuv)
            assert rc == 0, err
            frames = len([s for s in read_stamps(yuv, W, H) if s])
            d = srv.device()
            u = _uplink(k)
            assert d["media_path"] == "control", d["media_path"]
            assert units >= 2 * FPS, f"only {units} units recorded in 4 s over the control path"
            fb = d["control_media"]
            assert fb["feedback_sent"] > 0 and fb["feedback_dropped"] == 0, fb
            assert frames >= 0.9 * units, f"{frames} frames decoded of {units} units recorded"
            # Nothing but the carrier's drops went over UDP once switched (the
            # probes every 30 s are not due yet).
            assert ctl["up"]["udp"] == 0, ctl
            up_udp = udp["up"]["udp"] + udp["up"]["tcp"]
            up_ctl = ctl["up"]["tcp"] + ctl["up"]["udp"]
            down_udp = udp["down"]["udp"] + udp["down"]["tcp"]
            down_ctl = ctl["down"]["tcp"] + ctl["down"]["udp"]
            # The same SRTP packets plus ZMTP/CURVE framing (~40 B each) and TCP
            # instead of UDP headers: a few percent more on the way up, never
            # half as much again.
            ratio = (up_ctl / max(ctl_payload, 1)) / (up_udp / max(udp_payload, 1))
            assert ratio < 1.5, f"the control path costs {ratio:.2f}x UDP per media byte"
            print(f"     at {BITRATE} kbit/s: media over the control connection "
                  f"{took:.2f} s after the block; up {up_udp:.0f} B/s over UDP "
                  f"({udp['up']['udp']:.0f} UDP + {udp['up']['tcp']:.0f} TCP; media payload "
                  f"{udp_payload:.0f} B/s) vs {up_ctl:.0f} B/s over the control connection "
                  f"(TCP; payload {ctl_payload:.0f} B/s): {ratio:.3f}x per media byte; down "
                  f"{down_udp:.0f} B/s vs {down_ctl:.0f} B/s (TCP ACKs); recording after the "
                  f"switch: {frames} frames decoded of {units} units; uplink: "
                  f"{u['control_media_packets']} packets, {u['control_media_bytes']} B over the "
                  f"control connection, {u['control_media_dropped']} dropped; plugin: "
                  f"{d['control_media']}")
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


def test_udp_returns():
    probe_s = 3
    with Lab() as lab:
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv, bitrate=BITRATE, udp_probe_s=probe_s).start()
        try:
            srv.wait(_on("udp"), 15, "media over UDP")
            time.sleep(1)
            took, _ = _switch_to_control(lab, srv)
            time.sleep(1.5)  # somewhere in the probe interval
            lab.block_udp(False)
            t0 = time.monotonic()
            d, _ = srv.wait(_on("udp"), 4 * probe_s, "media back on UDP", interval=0.02)
            back = time.monotonic() - t0
            assert back <= 2 * probe_s, f"media back on UDP {back:.2f} s after UDP passed again"
            u = _uplink_on(k, "udp", "the uplink saying so")
            assert u["path_switches"] >= 2, u
            assert u["udp_probes"] >= 1, u
            # It stays there: UDP answers.
            time.sleep(2)
            d = srv.device()
            u = _uplink(k)
            assert _on("udp")(d) and u["media_path"] == "udp", (d["media_path"], u["media_path"])
            print(f"     udp_probe_s {probe_s}: control path {took:.2f} s after the block; media "
                  f"back on UDP {back:.2f} s after UDP passed again; uplink: "
                  f"{u['path_switches']} switches, {u['udp_probes']} UDP probes, "
                  f"{u['control_asks']} asks over the control connection; plugin: "
                  f"{d['control_media']['path_switches']} switches")
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


def test_udp_never_worked():
    with Lab() as lab:
        lab.block_udp()
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv, bitrate=BITRATE).start(wait_running=False)
        try:
            srv.wait(lambda d: d["online"], 15, "the device online", interval=0.02)
            t0 = time.monotonic()
            d, _ = srv.wait(_on("control"), 10, "media over the control connection",
                            interval=0.02)
            took = time.monotonic() - t0
            assert took <= SWITCH_S, f"media through {took:.2f} s after the session began"
            u = _uplink_on(k, "control", "the uplink saying so")
            print(f"     UDP blocked from the start: media through {took:.2f} s after the session "
                  f"began; uplink: {u['control_asks']} asks, {u['path_switches']} switch")
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


if __name__ == "__main__":
    cases = [test_udp_blocked_midstream, test_udp_returns, test_udp_never_worked]
    pick = os.environ.get("OUTPOST_CASES")
    run_cases([c for c in cases if not pick or pick in c.__name__])
