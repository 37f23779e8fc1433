"""On demand across edges: an on-demand device, its origin (Janus + the
plugin, ASan + UBSan) and an edge Janus (the stock Streaming plugin from
tools/edge's jcfg) fed by an on-demand forward, with tools/edge's reporter
telling the origin the edge's viewers.

1. Nobody on the edge: the device does not stream; the forward is not
   watching; its uplink sends no media.
2. A viewer watches on the edge (a bare watch: the Streaming plugin counts it
   at once, and asks its source for a keyframe only once the viewer's
   PeerConnection is up, which browser.edge's Chromium does): the next report
   starts the device; the edge's mountpoint gets packets.
3. The viewer leaves: the next report says 0, the forward stops watching, the
   device stops after its linger, and its uplink's media bytes stand still:
   zero uplink bytes while nobody anywhere watches.
4. A forward across device restarts and a codec change (a plain UDP socket
   as the edge): its SSRC stays, its sequence numbers go on by one, its
   timestamps only increase; while the device sends H.264 the AV1 forward
   sends nothing (counted), and it resumes when AV1 comes back."""
import os
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kernel"))
sys.path.insert(0, os.path.join(HERE, "..", "janus"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
from harness import run_cases  # noqa: E402
from janus import STREAMING_SO, Janus, free_port  # noqa: E402
import edge  # noqa: E402
from test_server import SECRET, Server, device_kernel  # noqa: E402

LINGER_MS = 1000


def _uplink_media_bytes(k):
    return k.mod("uplink")["module"].get("media_bytes", 0)


def test_on_demand_across_edges():
    srv = Server(mode="on-demand", on_demand_linger_ms=LINGER_MS)
    port = free_port(socket.SOCK_DGRAM)
    key = edge.new_key()
    ej = Janus({"janus.plugin.streaming": STREAMING_SO},
               {"janus.plugin.streaming": edge.streaming_jcfg(
                   [edge.mountpoint("cam1", "av1", port, key)])}, name="edge")
    k = device_kernel(srv)
    stop = threading.Event()
    reports = []

    def reporter():  # tools/edge report, in a thread, every second
        while not stop.wait(1.0):
            try:
                reports.append(edge.report_once(ej.admin_url, ej.admin_secret, "127.0.0.1",
                                                srv.janus.admin_url, srv.janus.admin_secret,
                                                SECRET))
            except Exception as e:  # noqa: BLE001 - shown, and the case's checks fail
                reports.append(repr(e))

    t = threading.Thread(target=reporter, daemon=True)
    try:
        srv.janus.start()
        ej.start()
        k.start()
        srv.wait(lambda d: d["online"], 20, "cam1 online")
        fw = srv.admin(dict(edge.forward_request("cam1", "av1", "127.0.0.1", port, key,
                                                 on_demand=True), secret=SECRET))["forward"]
        assert fw["on_demand"] and not fw["watching"], fw
        t.start()
        time.sleep(3)
        d = srv.device()
        bytes0 = _uplink_media_bytes(k)
        time.sleep(2)
        idle = _uplink_media_bytes(k) - bytes0
        assert not d["streaming"] and d["packets"] == 0 and idle == 0, (d, idle, reports)
        # A viewer on the edge (a watch: the Streaming plugin counts it and asks
        # its source for a keyframe; no PeerConnection is needed for either).
        c = ej.client()
        c.create_session()
        h = c.attach("janus.plugin.streaming")
        t0 = time.monotonic()
        c.message(h, {"request": "watch", "id": "cam1"}, full=True)
        srv.wait(lambda d: d["streaming"] and d["packets"] > 0, 10, "the device streaming")
        started = time.monotonic() - t0
        f = srv.admin({"request": "list_forwards", "secret": SECRET})["forwards"][0]
        time.sleep(1.5)
        info = ej.admin({"request": "info", "id": "cam1"}, plugin="janus.plugin.streaming")["info"]
        assert info["viewers"] == 1 and 0 <= info["media"][0]["age_ms"] < 500, info
        assert f["watching"] and f["edge_viewers"] == 1, f
        # The viewer leaves: the device stops after the next report and its linger.
        c.destroy()
        t1 = time.monotonic()
        srv.wait(lambda d: not d["streaming"], 10, "the device stopped")
        stopped = time.monotonic() - t1
        d = srv.device()
        time.sleep(1)
        bytes1 = _uplink_media_bytes(k)
        time.sleep(3)
        after = _uplink_media_bytes(k) - bytes1
        f = srv.admin({"request": "list_forwards", "secret": SECRET})["forwards"][0]
        assert not f["watching"] and f["edge_viewers"] == 0, f
        assert after == 0, f"the uplink sent {after} media bytes with nobody watching"
        assert d["on_demand"]["starts"] == 1 and d["on_demand"]["stops"] == 1, d["on_demand"]
        print(f"     nobody on the edge: not streaming, {idle} media bytes in 2 s; a watch on "
              f"the edge started the device in {started:.2f} s (a report every 1 s; "
              f"{f['reports']} in all); gone: stopped {stopped:.2f} s later (report + "
              f"{LINGER_MS} ms linger), {after} media bytes in the 3 s after")
    finally:
        stop.set()
        k.stop()
        k.cleanup()
        ej.stop()
        ej.cleanup()
        srv.cleanup()


class _Reader:
    """Everything a UDP socket receives, (ssrc, seq, timestamp, pt) each, read
    by a thread of its own (a socket left unread between phases overflows)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got, self.on = [], True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.on:
            try:
                p = self.sock.recv(2048)
            except socket.timeout:
                continue
            self.got.append((struct.unpack("!I", p[8:12])[0], struct.unpack("!H", p[2:4])[0],
                             struct.unpack("!I", p[4:8])[0], p[1] & 0x7f))

    def close(self):
        self.on = False
        self.thread.join(2)
        self.sock.close()


def test_forward_across_restarts():
    srv = Server()
    rx = _Reader()
    k = device_kernel(srv)
    try:
        srv.janus.start()
        k.start()
        srv.wait(lambda d: d["packets"] > 0, 20, "cam1 streaming")
        fw = srv.admin({"request": "forward", "secret": SECRET, "id": "cam1", "host": "127.0.0.1",
                        "port": rx.port, "codec": "av1"})["forward"]
        time.sleep(1.5)
        k.stop()  # the device restarts: a new session, a new SSRC on the ingest
        k.start()
        srv.wait(lambda d: d["online"] and d["last_packet_age_ms"] < 300, 20, "cam1 back")
        time.sleep(1.5)
        h264 = device_kernel(srv, encoder="encoder-x264")  # the same device, now H.264
        k.stop()
        h264.start()
        srv.wait(lambda d: d["codec"] == "h264" and d["last_packet_age_ms"] < 300, 20,
                 "cam1 in H.264")
        time.sleep(1)
        n0 = len(rx.got)
        time.sleep(1.5)
        during = len(rx.got) - n0
        f = srv.admin({"request": "list_forwards", "secret": SECRET})["forwards"][0]
        h264.stop()
        h264.cleanup()
        k.start()  # AV1 again
        srv.wait(lambda d: d["codec"] == "av1" and d["last_packet_age_ms"] < 300, 20,
                 "cam1 in AV1 again")
        time.sleep(1.5)
        got = list(rx.got)
        f = srv.admin({"request": "list_forwards", "secret": SECRET})["forwards"][0]
        ssrcs = {p[0] for p in got}
        seqs = [p[1] for p in got]
        stamps = [p[2] for p in got]
        steps = {(b - a) & 0xffff for a, b in zip(seqs, seqs[1:])}
        back = sum(1 for a, b in zip(stamps, stamps[1:]) if 0 < (a - b) & 0xffffffff < 2 ** 31)
        assert ssrcs == {fw["ssrc"]} and {p[3] for p in got} == {96}, (ssrcs, fw)
        assert steps == {1}, f"sequence numbers not continuous: steps {sorted(steps)[:10]}"
        assert back == 0, f"{back} timestamps went back"
        assert during == 0 and f["other_codec"] > 0 and f["send_errors"] == 0, (during, f)
        print(f"     {len(got)} packets over two restarts and a codec change: one SSRC "
              f"{fw['ssrc']:#x}, sequence +1 throughout, timestamps only forward; during "
              f"H.264 nothing sent to the AV1 forward ({f['other_codec']} packets counted)")
    finally:
        rx.close()
        k.stop()
        k.cleanup()
        srv.cleanup()


if __name__ == "__main__":
    run_cases([test_on_demand_across_edges, test_forward_across_restarts])
