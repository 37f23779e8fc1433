"""Uplink overhead: bytes on the wire (SRTP + UDP + IPv4 headers, plus SRTCP sender
reports) over coded bytes, for a device streaming to a real Janus with the plugin
over loopback, at 250 kbit/s (and 500), AV1 and H.265. Counted by the uplink
itself (bytes and datagrams sent) against the encoder's own byte count (status
snapshots 0.5 s apart, so a 10 s window is within ~5 %). The baseline from the
same run: the same packets without SRTP's trailers (10 bytes an RTP packet with
the default profile, 14 an SRTCP one), i.e. what plain RTP cost before.
   OUTPOST_BUILD=build-bench python3 tools/bench/uplink_overhead.py"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "server"))
import test_server as t  # noqa: E402  (its fixtures; its cases run only as __main__)

UDP_IP = 8 + 20


def measure(encoder, kbps, seconds=10):
    srv = t.Server()
    srv.janus.start()
    k = t.device_kernel(srv, encoder=encoder, bitrate=kbps).start()
    try:
        srv.wait(t.flowing, 10, "media")
        time.sleep(1.5)  # past start-up: keyframe, first status reports
        u0, e0 = k.mod("uplink")["module"], k.mod("encoder")["module"]
        time.sleep(seconds)
        u1, e1 = k.mod("uplink")["module"], k.mod("encoder")["module"]
    finally:
        k.stop()
        k.cleanup()
        srv.cleanup()
    coded = e1["bytes_out"] - e0["bytes_out"]  # what the encoder produced
    sent = u1["bytes_sent"] - u0["bytes_sent"]  # RTP (headers included) and RTCP
    pkts = u1["packets_sent"] - u0["packets_sent"] + u1["rtcp_sent"] - u0["rtcp_sent"]
    rtp = sent
    wire = sent + pkts * UDP_IP
    tag = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}.get(
        (u1.get("session") or {}).get("srtp_profile"), 0) if u1.get("srtp") else 0
    srtp = (u1["packets_sent"] - u0["packets_sent"]) * tag + \
        (u1["rtcp_sent"] - u0["rtcp_sent"]) * (14 if tag else 0)
    plain = wire - srtp
    print(f"{encoder:14s} {kbps:4d} kbit/s: {pkts / seconds:5.1f} packets/s, coded {coded} B, "
          f"SRTP {rtp} B, wire {wire} B -> x{wire / coded:.3f} (+{(wire / coded - 1) * 100:.1f} %);"
          f" without SRTP's {srtp} B x{plain / coded:.3f}; SRTP costs {srtp / seconds:.0f} B/s")


try:
    for enc in ("encoder-aom", "encoder-x265"):
        for rate in (250, 500):
            measure(enc, rate)
finally:
    t.shutil.rmtree(t.WORK, ignore_errors=True)
