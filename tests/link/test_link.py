"""The device on a cellular-like link (tests/link/lab.py): a real device
kernel in the device namespace, real Janus with the plugin in the server
namespace, the carrier (NAT, faults) in between. Each case prints what it
measured.

1. The lab itself: up and down well under a second, the bill counts, a lab
   whose owner was killed -9 is swept (its processes and namespaces gone).
2. An outage (both ways, silent): the plugin shows the device offline within
   7 s, tells a watching viewer, and its bitrate reads 0; after the link
   returns, fresh media within 3 s and decodable frames in a recording that
   ran across it. The same when the carrier NAT forgot every mapping meanwhile
   (what a 5-minute outage does; tools/soak runs a real one).
3. NAT rebinding mid-stream: UDP from a new port is accepted again within 1 s
   on the same control session; a forgotten TCP mapping (a dead connection)
   gives a new session and media back.
4. The control connection dies silently while UDP passes, streaming: both
   ends notice, media stops (no session, no keys), figures read 0. (An idle
   device's link dying: test_bytes.py, with the idle keepalive's deadline.)
5. A bad but working link (200 ms RTT ±30 ms, 3 % loss and bursts of 5):
   >= 90 % of the recorded units decodable (tests/link/mjr.py; 99 % with the
   25 % resend budget before issue 14's 10 %), the longest freeze printed,
   the retransmissions within budget.
6. Janus killed and restarted: streaming again within 5 s of it being ready."""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture import FPS, H, W, LabServer, device_kernel, flowing  # noqa: E402
from harness import pid_alive, run_cases  # noqa: E402
from lab import Lab, bill_bytes, bill_diff, sweep  # noqa: E402
from media import decode, read_stamps  # noqa: E402
from mjr import longest_freeze  # noqa: E402


def _fresh(d):
    """Media that arrived in the last 500 ms."""
    return flowing(d)


def test_lab_itself():
    t0 = time.monotonic()
    lab = Lab().up()
    up = time.monotonic() - t0
    try:
        # A UDP echo in the server namespace, a sender in the device namespace:
        # the bill sees both ways, the NAT gives a public port.
        echo = lab.popen("srv", [sys.executable, "-c",
                                 "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                                 "s.bind(('0.0.0.0',9000))\nwhile True:\n d,a=s.recvfrom(2048)\n"
                                 " s.sendto(str(a[1]).encode(),a)\n"])
        probe = ("import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                 "s.settimeout(0.5)\ngot=0\nfor i in range(int(sys.argv[1])):\n"
                 " s.sendto(b'x'*100,('10.77.2.2',9000))\n try:\n  s.recv(64); got+=1\n"
                 " except OSError: pass\nprint(got)\n")
        try:
            time.sleep(0.2)
            b0 = lab.bill()
            got = int(lab.sh("dev", [sys.executable, "-c", probe, "20"]))
            paid = bill_diff(lab.bill(), b0)
            assert got == 20, got
            # 100 bytes of payload + 8 UDP + 20 IP, each way
            assert paid["up"]["udp"] == (20 * 128, 20), paid
            assert paid["down"]["udp"][1] == 20, paid
            lab.outage()
            assert int(lab.sh("dev", [sys.executable, "-c", probe, "2"])) == 0
            lab.restore()
            assert int(lab.sh("dev", [sys.executable, "-c", probe, "2"])) == 2
        finally:
            echo.kill()
            echo.wait()
    finally:
        t1 = time.monotonic()
        lab.down()
        down = time.monotonic() - t1
    assert up < 1.0 and down < 1.0, (up, down)
    # A harness killed -9 with a process running inside its lab: the next lab
    # sweeps both.
    owner = subprocess.Popen([sys.executable, "-c",
                              "import sys, time; sys.path.insert(0, sys.argv[1])\n"
                              "from lab import Lab\nlab = Lab().up()\n"
                              "lab.popen('dev', ['sleep', '600'])\n"
                              "print(lab.n, flush=True)\ntime.sleep(600)\n", HERE],
                             stdout=subprocess.PIPE, text=True)
    n = int(owner.stdout.readline())
    inside = [int(p) for p in subprocess.run(["ip", "netns", "pids", f"olab{n}-dev"],
                                             capture_output=True, text=True).stdout.split()]
    assert inside, "nothing ran in the lab"
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    owner.stdout.close()
    swept = sweep()
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert n in swept and f"olab{n}-" not in left, (swept, left)
    for p in inside:
        assert not pid_alive(p), f"process {p} of the lab outlived it"
    print(f"     up {up * 1000:.0f} ms, down {down * 1000:.0f} ms; 20 echoes billed "
          f"{paid['up']['udp'][0]} B up, {paid['down']['udp'][0]} B down; a lab left by kill -9 "
          f"swept with {len(inside)} process inside")


def _outage(seconds, forget_nat):
    with Lab() as lab:
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        c = None
        try:
            srv.wait(flowing, 15, "media through the lab")
            # A viewer that stays: it is told, and plays on without reloading.
            c = srv.janus.client()
            c.create_session()
            h = c.attach("janus.plugin.outpost")
            c.message(h, {"request": "watch", "id": "cam1"}, full=True)
            k0 = srv.device()["keyframes"]
            srv.record_start()
            # The recording opens on a keyframe: a second and a half of frames
            # after it (not a fixed time after the start: a loaded machine's
            # keyframe comes late).
            srv.wait(lambda d: d["keyframes"] > k0, 10, "a keyframe for the recording")
            time.sleep(1.5)
            lab.outage()
            t_cut = time.monotonic()
            srv.wait(lambda d: not d["online"], 10, "the device offline")
            offline_s = time.monotonic() - t_cut
            ev = c.wait_event(lambda e: (e.get("plugindata", {}).get("data", {}).get("result", {})
                                         .get("status") == "offline"), 5, "the viewer told")
            assert ev, "no offline event"
            d, _ = srv.wait(lambda d: d["bitrate_kbps"] == 0, 5, "the bitrate reading 0")
            b_out = lab.bill()
            time.sleep(max(0.0, seconds - (time.monotonic() - t_cut)))
            spent = bill_diff(lab.bill(), b_out)
            if forget_nat:
                lab.rebind("all")
            lab.restore()
            t_back = time.monotonic()
            d, _ = srv.wait(_fresh, 10, "media after the outage", interval=0.02)
            back_s = time.monotonic() - t_back
            assert offline_s <= 7.0, f"offline shown {offline_s:.1f} s after the cut"
            assert back_s <= 3.0, f"media back {back_s:.2f} s after the link returned"
            time.sleep(3)
            mp4, units = srv.record_stop()
            yuv = mp4 + ".yuv"
            rc, err = decode(mp4, None, yuv)
            assert rc == 0, err
            stamps = [s for s in read_stamps(yuv, W, H) if s]
            # one recording, its gap where the outage was: frames on both sides
            gaps = [b[1] - a[1] for a, b in zip(stamps, stamps[1:])]
            cut = gaps.index(max(gaps)) if gaps else 0
            before, after = stamps[:cut + 1], stamps[cut + 1:]
            assert max(gaps, default=0) >= seconds * 1000 * 0.8, f"no gap of the outage: {gaps}"
            assert len(before) >= FPS and len(after) >= FPS, (
                f"{len(before)} frames decoded before the outage, {len(after)} after")
            print(f"     {seconds} s outage{' + NAT mappings forgotten' if forget_nat else ''}: "
                  f"offline shown after {offline_s:.1f} s, viewer told, bitrate 0; media back "
                  f"{back_s:.2f} s after the link returned; one recording across it: "
                  f"{len(before)} frames decoded before, {len(after)} after, units "
                  f"{units}; during the outage the device sent "
                  f"{bill_bytes(spent, 'up')} B ({bill_bytes(spent, 'up', 'tcp')} B TCP)")
        finally:
            if c:
                c.destroy()
            k.stop()
            k.cleanup()
            srv.cleanup()


def test_outage_30s():
    _outage(30, forget_nat=False)


def test_outage_nat_forgotten():
    _outage(15, forget_nat=True)


def test_nat_rebinding():
    with Lab() as lab:
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        try:
            d0, _ = srv.wait(flowing, 15, "media through the lab")
            time.sleep(1)
            # UDP only: the control connection keeps its mapping.
            before = {p: port for p, _, port in lab.mappings()}
            lab.rebind("udp")
            t0 = time.monotonic()
            d1, _ = srv.wait(lambda d: flowing(d) and d["source"] != d0["source"], 5,
                             "media from the new port", interval=0.02)
            udp_s = time.monotonic() - t0
            assert d1["ssrc"] == d0["ssrc"], "a new session where the control link survived"
            assert udp_s <= 1.0, f"media accepted again {udp_s:.2f} s after the rebinding"
            # TCP too, and the old connection silently dead: a new session.
            lab.rebind("all")
            t0 = time.monotonic()
            d2, _ = srv.wait(lambda d: flowing(d) and d["ssrc"] != d0["ssrc"], 15,
                             "a new session after the TCP mapping was lost", interval=0.02)
            tcp_s = time.monotonic() - t0
            print(f"     UDP rebound ({before.get('udp')} -> {d1['source']}): media accepted "
                  f"{udp_s * 1000:.0f} ms later, same session; TCP mapping lost too: new session "
                  f"and media after {tcp_s:.1f} s")
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


def test_control_dies_streaming():
    with Lab() as lab:
        srv = LabServer(lab, mode="always").start()
        k = device_kernel(lab, srv).start()
        try:
            srv.wait(flowing, 15, "media through the lab")
            lab.block_tcp()
            t0 = time.monotonic()
            srv.wait(lambda d: not d["online"], 10, "the plugin noticing")
            plugin_s = time.monotonic() - t0
            st, _ = k.wait(lambda st: not k.mod("uplink", st)["module"]["connected"], 10,
                           "the device noticing")
            device_s = time.monotonic() - t0
            srv.wait(lambda d: d["bitrate_kbps"] == 0, 5, "the bitrate reading 0")
            b0 = lab.bill()
            time.sleep(2)
            spent = bill_diff(lab.bill(), b0)
            assert bill_bytes(spent, "up", "udp") == 0, f"media without a session: {spent}"
            u = k.mod("uplink")["module"]
            assert u["kbps"] == 0, f"the uplink still shows {u['kbps']} kbit/s"
            lab.block_tcp(False)
            srv.wait(flowing, 10, "back")
            print(f"     control link dead while streaming: plugin "
                  f"noticed after {plugin_s:.1f} s, device after {device_s:.1f} s; then no media "
                  f"(0 B of UDP in 2 s), the uplink's rate {u['kbps']:.0f} kbit/s, control messages "
                  f"dropped {u['control_dropped']}, units dropped {u['units_dropped']}")
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


def test_bad_but_working_link():
    """200 ms RTT ±30 ms, 3 % random loss and bursts of 5 on the way up: the
    recording decodes, retransmissions follow the RTT and stay within budget."""
    with Lab() as lab:
        lab.impair("up", delay=100, jitter=15, burst="5,1", seed=5)
        lab.impair("down", delay=100, jitter=15, seed=12)
        lab.loss(3, "up")
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        try:
            srv.wait(flowing, 15, "media through the lab")
            time.sleep(2)  # the RTT learnt from the first losses
            d0 = srv.device()
            u0 = k.mod("uplink")["module"]
            b0 = lab.bill()
            srv.record_start()
            time.sleep(10)
            mp4, units = srv.record_stop()
            d1 = srv.device()
            u1 = k.mod("uplink")["module"]
            paid = bill_diff(lab.bill(), b0)
            # What a decoder can show (tests/link/mjr.py): with the resends
            # within 10 % of the media over 5 s (issue 14), a burst now and
            # then goes unrepaired, and janus-pp-rec writes no readable MP4
            # from a recording that lacks a packet.
            frames, n, freeze = longest_freeze(mp4[:-4] + ".mjr")
            loss = {k2: d1["ingest_loss"][k2] - d0["ingest_loss"][k2]
                    for k2 in ("missing", "recovered", "given_up", "nacks_sent")}
            media = u1["payload_bytes"] - u0["payload_bytes"]
            resent = u1["retransmit_bytes"] - u0["retransmit_bytes"]
            up = lab.impair_stats("up")
            rtt = d1["ingest_rtt"]["rtt_ms"]
            asks = d1["ingest_loss"]["asked"] - d0["ingest_loss"]["asked"]
            print(f"     RTT 200±30 ms, 3 % + bursts ({up['dropped_burst']} burst-dropped of "
                  f"{up['seen']}): {frames} of {n} recorded units decodable, longest "
                  f"freeze {freeze} ms; loss {loss}, {asks} asks; plugin RTT {rtt:.0f} ms, uplink "
                  f"RTT {u1.get('rtt_ms'):.0f} ms; resent {resent} B = "
                  f"{100 * resent / max(media, 1):.1f} % of {media} B media (over budget "
                  f"{u1['retransmit_over_budget']}, not worth it in a broken picture "
                  f"{u1['retransmit_futile']}, held while the link was full "
                  f"{u1['retransmit_link_full'] - u0['retransmit_link_full']}); the bill up "
                  f"{bill_bytes(paid, 'up')} B; the controller {u1.get('cc')}")
            assert units >= 5 * FPS, f"only {units} units recorded in 10 s"
            assert frames >= 0.9 * n, f"{frames} of {n} units decodable"
            assert loss["missing"] > 0 and up["dropped_burst"] >= 5, "the link lost too little"
            # the retry follows the round trip (170-230 ms with the jitter) and one
            # ask mostly does: a fixed 150 ms retry asked about twice per loss
            assert 150 <= rtt <= 300, f"the plugin measured {rtt} ms"
            assert asks <= 1.5 * loss["missing"], f"{asks} asks for {loss['missing']} losses"
            assert resent <= 0.10 * media + 1300, "retransmissions over the uplink's budget"
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


def test_janus_restart():
    with Lab() as lab:
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        try:
            srv.wait(flowing, 15, "media through the lab")
            srv.janus.kill()
            time.sleep(1)
            srv.janus.restart()
            t0 = time.monotonic()
            _, took = srv.wait(flowing, 5, "media after the restart", interval=0.02)
            assert k.mod("uplink")["restarts"] == 0
            print(f"     media back {took:.2f} s after Janus was ready again")
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


if __name__ == "__main__":
    cases = [test_lab_itself, test_outage_30s, test_outage_nat_forgotten, test_nat_rebinding,
             test_control_dies_streaming, test_bad_but_working_link,
             test_janus_restart]
    pick = os.environ.get("OUTPOST_CASES")
    run_cases([c for c in cases if not pick or pick in c.__name__])
