"""SRTP on the ingest leg, end to end: a real device kernel (its uplink
protects with the keys the plugin hands out in the session message) sends
through a UDP middlebox (tests/server/relay.py) to Janus with the plugin.

1. Attacks while the stream plays: a tampered packet, a replayed one, one in
   clear with the device's SSRC, and a tampered one from a new address are
   each dropped and counted by kind; the latched source does not move; the
   stream keeps flowing.
2. NAT rebinding: the middlebox changes the port the device's packets come
   from; the first authenticated packet moves the latch (within 1 s), and the
   plugin's SRTCP feedback (NACKs for 5 % loss) reaches the device on the new
   path.
3. Keys rotate: a device that reconnects gets new keys; the old keys'
   packets (replayed from before) no longer authenticate."""
import os
import shutil
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_server import WORK, Server, device_kernel, flowing  # noqa: E402
from harness import run_cases  # noqa: E402
from janus import free_port  # noqa: E402
from relay import Relay  # noqa: E402


def _setup(loss=0.0, **uplink):
    public = free_port(socket.SOCK_DGRAM)
    srv = Server(public_port=public)
    srv.janus.start()
    relay = Relay(srv.ingest_port, public, loss=loss)
    relay.start()
    k = device_kernel(srv, bitrate=300, **uplink).start()
    return srv, relay, k


def _teardown(srv, relay, k):
    relay.stop()
    k.stop()
    k.cleanup()
    srv.cleanup()


def _wait_for(pred, timeout):
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.02)


def test_attacks_dropped_and_counted():
    # 40 packets spoiled within a second are most of that second's media: the
    # retransmission budget (25 %, tests/link judges it) would refuse part of
    # their resends; this case is about what SRTP refuses, so no budget here.
    srv, relay, k = _setup(retransmit_budget_pct=100)
    try:
        d0 = srv.wait(flowing, 10, "media through the relay")[0]
        k.wait(lambda st: k.mod("uplink", st)["module"].get("srtp") is True, 5,
               "the uplink protecting with the session's keys")
        assert d0["srtp"]["keys"] and d0["source"] == f"127.0.0.1:{relay.upstream_port}", d0
        time.sleep(0.5)
        before = srv.device()
        p0 = before["packets"]
        n = 20
        for i in range(n):
            relay.inject(relay.last_rtp(8))  # already delivered: a replay
            seq = (struct.unpack("!H", relay.last_rtp()[2:4])[0] + 100 + i) & 0xFFFF
            relay.inject(struct.pack("!BBHII", 0x80, 96, seq, 0, d0["ssrc"]) + os.urandom(200))
            time.sleep(0.05)
        # changed in flight (their originals lost: NACKed, resent, recovered); one
        # batch after the other has recovered, so the second changes no resend
        for from_new in (False, True):
            missing0 = srv.device()["ingest_loss"]["missing"]
            relay.tamper_from_new, relay.tamper = from_new, n
            _wait_for(lambda: relay.tamper == 0, 5)
            srv.wait(lambda d: d["ingest_loss"]["missing"] >= missing0 + n and
                     d["ingest_loss"]["recovered"] == d["ingest_loss"]["missing"], 5,
                     "the changed packets' originals recovered")
        d = srv.wait(flowing, 3, "the stream still flowing")[0]
        grew = {k2: d["srtp"][k2] - before["srtp"][k2] for k2 in ("auth_failed", "replayed")}
        c = srv.counters()
        loss = {k2: d["ingest_loss"][k2] - before["ingest_loss"][k2] for k2 in d["ingest_loss"]}
        print(f"     {n} each of replayed, in-clear, changed-in-flight and changed-from-a-new-"
              f"address packets: auth_failed +{grew['auth_failed']}, replayed "
              f"+{grew['replayed']}; the changed ones' originals: {loss}; "
              f"latch stayed at {d['source']}; {d['packets'] - p0} real packets meanwhile "
              f"(plugin counters: unauthenticated {c['ingest_unauthenticated']}, replayed "
              f"{c['ingest_replayed']}, rebinds {c['ingest_rebinds']})")
        assert grew["auth_failed"] >= 3 * n, grew
        assert grew["replayed"] >= n, grew
        assert d["source"] == before["source"] and d["srtp"]["rebinds"] == 0, d
        assert d["packets"] - p0 > 30, d
        assert loss["missing"] >= 2 * n and loss["recovered"] == loss["missing"], loss
    finally:
        _teardown(srv, relay, k)


def test_rebinding_moves_the_latch():
    srv, relay, k = _setup(loss=0.05)
    try:
        srv.wait(flowing, 10, "media through the relay")
        time.sleep(1)
        up0 = k.mod("uplink")["module"]
        new_port = relay.rebind()
        t0 = time.monotonic()
        d, took = srv.wait(lambda d: d["source"] == f"127.0.0.1:{new_port}", 3,
                           "the latch on the new port")
        back0 = relay.back
        time.sleep(3)
        up = k.mod("uplink")["module"]
        d = srv.device()
        print(f"     rebinding: latch moved after {took * 1000:.0f} ms; then {relay.back - back0} "
              f"SRTCP packets back through the new port in 3 s, uplink retransmissions "
              f"{up0['retransmissions']} -> {up['retransmissions']}, "
              f"rtcp_unauthenticated {up.get('rtcp_unauthenticated')}; loss {d['ingest_loss']}")
        assert took < 1.0, f"the latch moved after {took:.2f} s"
        assert d["srtp"]["rebinds"] == 1, d["srtp"]
        assert relay.back > back0 and up["retransmissions"] > up0["retransmissions"], \
            (relay.back, back0, up)
        assert up.get("rtcp_unauthenticated", 0) == 0, up
        assert flowing(d), d
        del t0
    finally:
        _teardown(srv, relay, k)


def test_keys_rotate_with_sessions():
    srv, relay, k = _setup()
    try:
        d0 = srv.wait(flowing, 10, "media")[0]
        old = relay.last_rtp()
        k.stop()
        srv.wait(lambda d: not d["online"], 5, "the device offline")
        k2 = device_kernel(srv, bitrate=300).start()
        try:
            d1 = srv.wait(lambda d: flowing(d) and d["ssrc"] != d0["ssrc"], 10, "a new session")[0]
            # the old packet, rewritten for the new SSRC and a sequence number just
            # ahead of the new stream's (libsrtp checks the replay window before the
            # tag, and the new stream starts at a random number): the old keys do
            # not authenticate it
            seq = (struct.unpack("!H", relay.last_rtp()[2:4])[0] + 50) & 0xFFFF
            forged = old[:2] + struct.pack("!H", seq) + old[4:8] + struct.pack("!I", d1["ssrc"]) + old[12:]
            before = srv.device()["srtp"]["auth_failed"]
            for _ in range(10):
                relay.inject(forged)
            time.sleep(0.3)
            after = srv.device()["srtp"]["auth_failed"]
            print(f"     new session (ssrc {d0['ssrc']:08x} -> {d1['ssrc']:08x}): packets under "
                  f"the old keys refused ({after - before} of 10)")
            assert after - before == 10, (before, after)
        finally:
            k2.stop()
            k2.cleanup()
    finally:
        _teardown(srv, relay, k)


def test_in_clear_by_configuration():
    """srtp_profile = "none" (a benchmark's tee, a trusted LAN): no keys in the
    session, the uplink sends plain RTP, the first source stays latched."""
    public = free_port(socket.SOCK_DGRAM)
    srv = Server(public_port=public, srtp_profile="none")
    srv.janus.start()
    relay = Relay(srv.ingest_port, public)
    relay.start()
    k = device_kernel(srv, bitrate=300).start()
    try:
        d = srv.wait(flowing, 10, "plain media")[0]
        st, _ = k.wait(lambda st: k.mod("uplink", st)["module"].get("srtp") is False and
                       k.mod("uplink", st)["module"]["units_sent"] > 0, 5, "the uplink in clear")
        assert "media from devices in clear" in srv.janus.log(), "no warning in Janus's log"
        relay.inject(relay.last_rtp(), from_new_port=True)
        time.sleep(0.3)
        d = srv.device()
        assert d["source"] == f"127.0.0.1:{relay.upstream_port}", d
        assert srv.counters()["ingest_wrong_source"] >= 1, srv.counters()
        print(f"     srtp_profile none: plain RTP flows ({d['packets']} packets), warned in the "
              f"log; a packet from another address does not move the latch")
    finally:
        _teardown(srv, relay, k)


if __name__ == "__main__":
    cases = [test_attacks_dropped_and_counted, test_rebinding_moves_the_latch,
             test_keys_rotate_with_sessions, test_in_clear_by_configuration]
    pick = os.environ.get("OUTPOST_CASES")
    try:
        run_cases([c for c in cases if not pick or pick in c.__name__])
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
