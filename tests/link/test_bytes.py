"""What an unwatched camera costs on its paid link (tests/link/lab.py: the
lab's nft counters are the carrier's bill: every byte each way, IP and TCP
headers, CURVE and the keepalives included). Each case prints what it
measured.

1. Idle: a device nobody watches (on-demand) spends at most 1 KB a minute,
   both directions together, with 0 media bytes; then the first viewer's
   `watch` has media at the plugin within 1 s; a viewer who leaves and comes
   back within the linger costs no start, no stop and no keyframe; when the
   last one leaves, media stops within the linger + 2 s and the link is
   quiet again.
2. An idle device that is gone (an outage) is shown offline after 2 k to
   2 k + min(k, 10 s) of silence, k its idle keepalive (10 s here, to keep
   the test short: at the default 55 s that is 110-120 s, the two minutes
   asked for), and the device itself notices within k + 5 s (TCP's
   retransmission timeout on its keepalive); after the link returns it is
   online again within 5 s."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture import flowing, lab_spine  # noqa: E402
from harness import run_cases  # noqa: E402
from lab import bill_bytes, bill_diff  # noqa: E402

IDLE_BUDGET_PER_MIN = 1024  # bytes, both directions
LINGER_MS = 3000  # the plugin's on_demand_linger_ms (its default)


def _per_min(spent, seconds, direction=None, proto=None):
    return bill_bytes(spent, direction, proto) * 60.0 / seconds


def _packets(spent, direction):
    return sum(spent[direction][p][1] for p in spent[direction])


def test_idle_then_on_demand():
    with lab_spine("on-demand", {"on_demand_linger_ms": LINGER_MS}) as (lab, srv, k):
        c = None
        try:
            srv.wait(lambda d: d["online"], 20, "the device online")
            # What a device says when it comes up (its module table, the
            # encoder's settings) settles within a few seconds.
            time.sleep(5)
            b0, t0 = lab.bill(), time.monotonic()
            time.sleep(60)
            spent, seconds = bill_diff(lab.bill(), b0), time.monotonic() - t0
            u = k.mod("uplink")["module"]
            total = _per_min(spent, seconds)
            print(f"     idle for {seconds:.0f} s: {total:.0f} B/min on the wire "
                  f"(up {_per_min(spent, seconds, 'up'):.0f} B in {_packets(spent, 'up')} packets, "
                  f"down {_per_min(spent, seconds, 'down'):.0f} B in {_packets(spent, 'down')}), "
                  f"media {bill_bytes(spent, None, 'udp')} B; keepalive {u['keepalive_s']} s, "
                  f"statuses {u['statuses']} ({u['statuses_bare']} bare)")
            assert bill_bytes(spent, None, "udp") == 0, f"media while nobody watches: {spent}"
            assert total <= IDLE_BUDGET_PER_MIN, f"{total:.0f} B/min idle: {spent}"
            d0 = srv.device()
            assert d0["online"] and not d0["streaming"], d0

            # The first viewer: media at the plugin within 1 s of its watch.
            c = srv.janus.client()
            c.create_session()
            h = c.attach("janus.plugin.outpost")
            t_watch = time.monotonic()
            c.message(h, {"request": "watch", "id": "cam1"}, full=True)
            d1, _ = srv.wait(lambda d: d["packets"] > d0["packets"], 5, "media after watch",
                             interval=0.01)
            first_s = time.monotonic() - t_watch
            assert first_s <= 1.0, f"first media {first_s * 1000:.0f} ms after watch"
            srv.wait(flowing, 5, "media flowing")
            time.sleep(2)

            # A flapping viewer: gone and back within the linger costs nothing.
            before = srv.device()
            c.detach(h)
            time.sleep(LINGER_MS / 1000 / 3)
            h = c.attach("janus.plugin.outpost")
            c.message(h, {"request": "watch", "id": "cam1"}, full=True)
            time.sleep(2)
            after = srv.device()
            assert after["on_demand"] == before["on_demand"] | {"lingering": False}, (
                before["on_demand"], after["on_demand"])
            assert after["keyframes"] == before["keyframes"], (
                f"a keyframe for a returning viewer: {before['keyframes']} -> {after['keyframes']}")
            assert flowing(after), after

            # The last viewer leaves: media stops after the linger.
            c.detach(h)
            t_left = time.monotonic()
            srv.wait(lambda d: d["last_packet_age_ms"] >= 300, LINGER_MS / 1000 + 3,
                     "media stopping after the last viewer left", interval=0.02)
            stop_s = time.monotonic() - t_left - 0.3
            assert stop_s <= LINGER_MS / 1000 + 2, f"media stopped {stop_s:.1f} s after"
            assert stop_s >= LINGER_MS / 1000 - 0.5, f"no linger: stopped after {stop_s:.1f} s"
            time.sleep(1)
            b1 = lab.bill()
            time.sleep(3)
            quiet = bill_diff(lab.bill(), b1)
            assert bill_bytes(quiet, None, "udp") == 0, f"media after the stop: {quiet}"
            d2 = srv.device()
            print(f"     on demand: first media {first_s * 1000:.0f} ms after watch; a viewer "
                  f"back within the linger: starts {before['on_demand']['starts']} -> "
                  f"{after['on_demand']['starts']}, stops {before['on_demand']['stops']} -> "
                  f"{after['on_demand']['stops']}, keyframes {before['keyframes']} -> "
                  f"{after['keyframes']}; the last one gone: media stopped {stop_s:.1f} s later "
                  f"(linger {LINGER_MS / 1000:.0f} s), then {bill_bytes(quiet)} B in 3 s "
                  f"(0 of media); on_demand {d2['on_demand']}")
        finally:
            if c:
                c.destroy()


def test_idle_device_gone():
    ka = 10
    with lab_spine("on-demand", keepalive_idle_s=ka) as (lab, srv, k):
        d, _ = srv.wait(lambda d: d["online"] and d["keepalive_s"] == ka, 20,
                        "the device online, idle")
        k.wait(lambda st: k.mod("uplink", st)["module"]["connected"], 5, "connected")
        lab.outage()
        t0 = time.monotonic()
        plugin_s = device_s = None
        while (plugin_s is None or device_s is None) and time.monotonic() - t0 < 4 * ka:
            now = time.monotonic() - t0
            if plugin_s is None and not srv.device()["online"]:
                plugin_s = now
            if device_s is None and not k.mod("uplink")["module"]["connected"]:
                device_s = now
            time.sleep(0.1)
        assert plugin_s is not None and device_s is not None, (plugin_s, device_s)
        lab.restore()
        t1 = time.monotonic()
        srv.wait(lambda d: d["online"], 10, "online again")
        back_s = time.monotonic() - t1
        print(f"     idle keepalive {ka} s, outage: plugin showed the device offline after "
              f"{plugin_s:.1f} s (allowed {2 * ka}-{2 * ka + min(ka, 10)} s + a tick; at the "
              f"default 55 s: 110-120 s), the device noticed after {device_s:.1f} s; "
              f"online {back_s:.1f} s after the link returned")
        # Not before two keepalives were missed, and within the deadline
        # (+ the plugin's 250 ms tick and the poll).
        assert 2 * ka - 1 <= plugin_s <= 2 * ka + min(ka, 10) + 1, plugin_s
        assert device_s <= ka + 5 + 1, device_s
        assert back_s <= 5, back_s


if __name__ == "__main__":
    run_cases([test_idle_then_on_demand, test_idle_device_gone])
