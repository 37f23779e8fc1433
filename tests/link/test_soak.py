"""Soak on the link lab: the device streams while a random fault from the
list hits the link every 30 s (`OUTPOST_SOAK_S`, 25 in ctest: one fault; tools/soak runs
600): outages both ways and one way, NAT rebinding of UDP and of everything,
a period of heavy loss, the control connection dead, Janus killed. The seed
is printed; OUTPOST_SOAK_SEED repeats a run.

At the end: the device streams again; no process of the device or of Janus
grew by more than 5 MB of RSS or by any file descriptor (measured after a
warm-up, and since the last Janus restart for Janus; Janus may hold an fd for
each control connection the device gave up on, until TCP keepalive closes it);
no sanitizer report (Kernel/Janus cleanup); and the counters agree: every UDP
datagram the lab delivered to the server is in one of the plugin's counters,
and the device's datagrams are what entered the link, each within 1 % (the
device's own count also within the second of packets its once-a-second status
may lag by)."""
import os
import random
import sys
import time

# ASan keeps freed memory in quarantine (256 MB a process by default), which
# shows as growth: without it RSS says what the program holds. Use-after-free
# is the other tests' business (they keep the quarantine).
os.environ["OUTPOST_ASAN_EXTRA"] = ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
os.environ["ASAN_OPTIONS"] = "detect_leaks=1" + os.environ["OUTPOST_ASAN_EXTRA"]

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fixture import LabServer, device_kernel, flowing  # noqa: E402
from harness import rss_kb, run_cases  # noqa: E402
from lab import Lab  # noqa: E402

SOAK_S = float(os.environ.get("OUTPOST_SOAK_S", "60"))
EVERY_S = 30
# Datagram counters of the plugin's ingest: each datagram lands in exactly one
# (fresh RTP is per device `packets`).
INGEST = ("ingest_malformed", "ingest_oversize", "ingest_unknown_ssrc", "ingest_wrong_pt",
          "ingest_wrong_source", "ingest_unauthenticated", "ingest_replayed", "ingest_stale",
          "ingest_rtcp")


def _fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _procs(k, srv):
    """{name: pid} of the device's processes and Janus."""
    procs = {"kernel": k.proc.pid, "janus": srv.janus.pid}
    procs.update({m["name"]: m["pid"] for m in k.status()["modules"]})
    return procs


def _sample(procs):
    return {n: (rss_kb(p), _fds(p)) for n, p in procs.items()}


def _udp_sent(k):
    u = k.mod("uplink")["module"]
    return u["packets_sent"] + u["retransmissions"] + u["rtcp_sent"]


def _plugin_datagrams(srv, detail=False):
    c = srv.counters()
    counts = {n: c.get(n, 0) for n in INGEST}
    counts["packets"] = srv.device()["packets"]
    return counts if detail else sum(counts.values())


def _established(lab, srv):
    """Established TCP connections on the plugin's control port, server side."""
    out = lab.sh("srv", ["ss", "-Htn", "state", "established",
                         f"( sport = :{srv.control_port} )"])
    return len([line for line in out.splitlines() if line.strip()])


def _faults(lab, srv):
    """name -> (start, end) callables; each fault lasts until end()."""
    def outage(direction):
        return (lambda: lab.outage(direction), lambda: lab.restore(direction))
    return {
        "outage 8 s both ways": outage("both"),
        "outage 8 s device->server": outage("up"),
        "outage 8 s server->device": outage("down"),
        "NAT forgets UDP": (lambda: lab.rebind("udp"), lambda: None),
        "NAT forgets everything": (lambda: lab.rebind("all"), lambda: None),
        "20 % loss for 8 s": (lambda: lab.loss(20, "both"), lambda: lab.loss(0, "both")),
        "control connection dead 8 s": (lambda: lab.block_tcp(), lambda: lab.block_tcp(False)),
        "Janus killed": (lambda: srv.janus.kill(), lambda: srv.janus.start()),
    }


def test_soak():
    seed = int(os.environ.get("OUTPOST_SOAK_SEED", str(int(time.time()) % 100000)))
    rnd = random.Random(seed)
    with Lab() as lab:
        srv = LabServer(lab).start()
        k = device_kernel(lab, srv).start()
        try:
            srv.wait(flowing, 15, "media through the lab")
            time.sleep(3)  # warm-up: allocators, encoder, sessions settle
            procs = _procs(k, srv)
            base = _sample(procs)
            faults = _faults(lab, srv)
            log = []
            t_end = time.monotonic() + SOAK_S
            # the plugin's counters start over with Janus: accounted per Janus run
            bill0, deliv0, sent0, got0 = lab.bill(), lab.delivered(), _udp_sent(k), \
                _plugin_datagrams(srv)
            runs = []  # (delivered to the server, counted by the plugin) per Janus run
            while time.monotonic() < t_end:
                time.sleep(max(0.0, min(EVERY_S - 10, t_end - time.monotonic())))
                if time.monotonic() >= t_end:
                    break
                name = rnd.choice(sorted(faults))
                start, end = faults[name]
                if name == "Janus killed":
                    # what the plugin got until now, then it starts over
                    time.sleep(1)
                    runs.append((lab.delivered()["up"]["udp"][1] - deliv0["up"]["udp"][1],
                                 _plugin_datagrams(srv) - got0))
                start()
                time.sleep(8 if "8 s" in name else 1)
                end()
                if name == "Janus killed":
                    deliv0, got0 = lab.delivered(), 0
                    base["janus"] = None
                    procs["janus"] = srv.janus.pid
                # A fault's consequences come late (a dead TCP connection is found
                # after 3-6 s, then a new session): judge after they have had time.
                time.sleep(6)
                _, back = srv.wait(flowing, 20, f"media after {name}")
                log.append(f"{name}: flowing {6 + back:.1f} s after it ended")
                if base["janus"] is None:
                    time.sleep(2)
                    base["janus"] = _sample({"janus": srv.janus.pid})["janus"]
                time.sleep(max(0.0, 4 - back))
            srv.wait(flowing, 10, "media at the end")
            time.sleep(1.5)  # packets in flight land, NACKs settle
            end_sample = _sample(procs)
            runs.append((lab.delivered()["up"]["udp"][1] - deliv0["up"]["udp"][1],
                         _plugin_datagrams(srv) - got0))
            sent = _udp_sent(k) - sent0
            entered = lab.bill()["up"]["udp"][1] - bill0["up"]["udp"][1]
            grew = {n: ((end_sample[n][0] - base[n][0]) // 1024 if base[n][0] else None,
                        end_sample[n][1] - base[n][1]) for n in procs if base[n]}
            print(f"     seed {seed}, {SOAK_S:.0f} s: " + "; ".join(log))
            print(f"     growth (MB RSS, fds): {grew}")
            print(f"     device sent {sent} UDP datagrams, {entered} entered the link; delivered "
                  f"vs counted by the plugin per Janus run: {runs}; the plugin's counters "
                  f"{_plugin_datagrams(srv, True)}")
            # A control connection the device gave up on (an outage, a NAT that
            # forgot it) sends the server no FIN: Janus holds it until TCP
            # keepalive closes it (within 150 s, control.c): an fd each, for
            # now, and not a leak.
            abandoned = max(0, _established(lab, srv) - 1)
            print(f"     control connections held by Janus: {abandoned + 1} "
                  f"({abandoned} given up by the device, closed by TCP keepalive within 150 s)")
            for n, (mb, fds) in grew.items():
                assert mb is None or mb <= 5, f"{n} grew {mb} MB"
                assert fds <= (abandoned if n == "janus" else 0), f"{n} has {fds} more fds"
            # The uplink publishes its counters once a second, the bill is read
            # live: the device's count may lag by a second of packets at either
            # end of the window (1 % covered it over 60 s; over 35 s a run
            # failed 1687 against 1723: 36 packets, a second at this rate).
            per_s = entered / max(1.0, SOAK_S)
            assert abs(sent - entered) <= 0.01 * entered + per_s + 2, (sent, entered)
            for delivered, counted in runs:
                assert abs(delivered - counted) <= 0.01 * delivered + 2, (delivered, counted)
        finally:
            k.stop()
            k.cleanup()
            srv.cleanup()


if __name__ == "__main__":
    run_cases([test_soak])
