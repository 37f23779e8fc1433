"""Forwarding cost per packet: janus.plugin.outpost against Janus's own Streaming
plugin, in one Janus, fed the identical RTP stream, watched by real WebRTC viewers.

    OUTPOST_BUILD=build-bench python3 tools/bench/forward_cost.py [--viewers 1,4,8]
        [--rounds 3] [--window 20] [--kbps 2000] [--size 320x240] [--fps 30]
        [--no-extmap] [-v]

Set-up (everything on this machine):
- one Janus (tests/janus/janus.py: private folder in /dev/shm) loading both
  plugins: ours (release build, device "cam1", mode "always") and the Streaming
  plugin with one RTP mountpoint (id 1, video only, AV1, the pt our plugin's
  session gives the device, 96);
- a device kernel (capture-testsrc -> encoder-rav1e -> uplink) whose uplink
  sends its RTP to a UDP tee in this script (uplink media_host 127.0.0.2, the
  port our plugin hands out); the tee forwards every datagram, unchanged, to our
  plugin's ingest port (127.0.0.1, same port) and to the mountpoint's port, and
  relays what comes back from our plugin (keyframe requests) to the device;
- one headless Chromium (tools/bench/forward/driver.mjs + viewers.js) holding N
  PeerConnections to one plugin or the other; each must decode frames
  (getStats framesDecoded rising, frameWidth = the sent width) before a
  window counts.

Measured per window (default 20 s), interleaved: 0 viewers (ingest only, both
plugins), N viewers on ours, N on Streaming, for each N, the order of the two
alternating from round to round. Janus's CPU comes from
/proc/<janus>/task/*/schedstat (ns on CPU, per thread; the thread's name from
comm) and is split into: the plugin's own threads (ours: "outpost ingest";
Streaming: the mountpoint's relay thread), the core's handle loops ("hloop N":
SRTP protect and send for each viewer) and the rest. Cost per packet per
viewer = (CPU in the window - CPU in the same round's 0-viewer window, both per
second) / (RTP packets received by the viewers per second, summed from
getStats packetsReceived). Reports the median and the range over rounds, the
ratio ours/Streaming, Janus's RSS, and how busy the whole machine was (other
work on the 2 cores shows there). Not a ctest."""
import argparse
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build-bench"))
sys.path.insert(0, os.path.join(ROOT, "tests", "server"))
import test_server as t  # noqa: E402
from spine import plugin_config  # noqa: E402  (keys, paths; its cases run only as __main__)
from harness import Kernel, die_with_test, module  # noqa: E402
from janus import STREAMING_SO, Janus, free_port  # noqa: E402

STREAMING = "janus.plugin.streaming"
OURS = t.PKG
DEVICE_ID = "cam1"
MOUNT_ID = 1
TEE_IP = "127.0.0.2"  # the uplink's media_host; our plugin listens on 127.0.0.1, same port
NODE = "/usr/bin/node"
DRIVER = os.path.join(HERE, "forward", "driver.mjs")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Tee(threading.Thread):
    """Device -> (our ingest, the mountpoint), each datagram as it came; what our
    plugin sends back (RTCP PLI to the latched address) goes to the device."""

    def __init__(self, port, outs):
        super().__init__(daemon=True, name="udp-tee")
        self.inp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.inp.bind((TEE_IP, port))  # raises if taken: the caller picks another port
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.out.bind(("127.0.0.1", 0))
        self.outs = outs
        self.device = None
        self.packets = self.back = 0
        self.running = True

    def run(self):
        while self.running:
            r, _, _ = select.select([self.inp, self.out], [], [], 0.2)
            if self.inp in r:
                data, self.device = self.inp.recvfrom(2048)
                # alternate who gets it first: neither plugin always wakes second
                outs = self.outs if self.packets % 2 == 0 else self.outs[::-1]
                for o in outs:
                    self.out.sendto(data, o)
                self.packets += 1
            if self.out in r:
                data, _ = self.out.recvfrom(2048)
                if self.device:
                    self.inp.sendto(data, self.device)
                    self.back += 1

    def stop(self):
        self.running = False
        self.join(2)
        self.inp.close()
        self.out.close()


class Driver:
    """The node/Chromium viewer driver: one JSON request, one JSON reply."""

    def __init__(self, url):
        self.proc = subprocess.Popen([NODE, DRIVER, "--server", url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1,
                                     preexec_fn=die_with_test)
        hello = self._read(60)
        if not hello.get("ok"):
            raise RuntimeError(f"driver: {hello}")
        self.version = hello.get("version")

    def _read(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            raise TimeoutError(f"no answer from the driver in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"driver exited ({self.proc.poll()})")
        return json.loads(line)

    def __call__(self, op, timeout=60, **kw):
        self.proc.stdin.write(json.dumps(dict(op=op, **kw)) + "\n")
        self.proc.stdin.flush()
        reply = self._read(timeout)
        if not reply.get("ok"):
            raise RuntimeError(f"driver {op}: {reply.get('error')}")
        return reply

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op":"quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# --- Janus's threads and memory
def threads(pid):
    """tid -> (comm, ns on CPU) for every live thread of pid."""
    out = {}
    base = f"/proc/{pid}/task"
    for tid in os.listdir(base):
        try:
            with open(f"{base}/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"{base}/{tid}/schedstat") as f:
                ns = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        out[tid] = (comm, ns)
    return out


def group(comm):
    """The plugins' media threads, the core's per-handle loops, the rest (HTTP,
    usrsctp, watchdogs, our control and request threads, Streaming's handler)."""
    if comm == "outpost ingest":
        return "ours"
    if comm.startswith("mp "):  # the Streaming plugin's relay thread of an RTP mountpoint
        return "streaming"
    if comm.startswith("hloop"):
        return "hloop"
    return "other"


def cpu_delta(a, b):
    """ns per group between two threads() snapshots; threads born in between
    count whole, threads that died in between are lost (and counted)."""
    d = {"ours": 0, "streaming": 0, "hloop": 0, "other": 0}
    per = {}
    for tid, (comm, ns) in b.items():
        n = ns - a[tid][1] if tid in a else ns
        d[group(comm)] += n
        per[comm] = per.get(comm, 0) + n
    d["total"] = sum(v for k, v in d.items())
    d["died"] = sum(1 for tid in a if tid not in b)
    return d, per


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def proc_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        r = f.read().rsplit(")", 1)[1].split()
    return int(r[11]) + int(r[12])  # utime + stime, whole process, dead threads included


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


# --- the set-up
class Bench:
    def __init__(self, args):
        self.args = args
        self.width, self.height = (int(x) for x in args.size.split("x"))
        self.control_port = free_port()
        for _ in range(20):  # a port free on 127.0.0.1 (our plugin) and 127.0.0.2 (the tee)
            self.ingest_port = free_port(socket.SOCK_DGRAM)
            self.mount_port = free_port(socket.SOCK_DGRAM, exclude=(self.ingest_port,))
            try:
                self.tee = Tee(self.ingest_port, [("127.0.0.1", self.ingest_port),
                                                  ("127.0.0.1", self.mount_port)])
                break
            except OSError:
                continue
        # In clear: the tee hands the same packets to the Streaming mountpoint,
        # which cannot know the session's SRTP keys (so SRTP's own cost is not
        # in these figures; bench_srtp_cost measures it).
        ours_cfg = plugin_config(self.control_port, self.ingest_port, t.SERVER[1], t.SECRET,
                                 "/tmp", {DEVICE_ID: (t.DEVICE[0], "always")},
                                 srtp_profile="none")
        # A private copy: build-bench may be rebuilt by someone else while we run.
        self.plugin_dir = tempfile.mkdtemp(prefix="outpost-fwd-plugin-", dir="/dev/shm")
        plugin = shutil.copy(t.PLUGIN, self.plugin_dir)
        self.janus = Janus({OURS: plugin, STREAMING: STREAMING_SO},
                           {OURS: ours_cfg, STREAMING: "general: {\n  events = false\n}\n"},
                           name="fwd", debug_level=args.debug_level)
        self.kernel = None
        self.driver = None
        self.pt = None

    def start(self):
        self.tee.start()
        self.janus.start()
        self.kernel = Kernel([
            module("capture", "capture-testsrc", width=self.width, height=self.height,
                   fps=self.args.fps),
            module("encoder", "encoder-rav1e", bitrate=self.args.kbps, fps=self.args.fps),
            module("uplink", "uplink", server=f"tcp://127.0.0.1:{self.control_port}",
                   server_key=t.SERVER[0], public_key=t.DEVICE[0], secret_key=t.DEVICE[1],
                   device=DEVICE_ID, media_host=TEE_IP)], name="fwd-dev").start()
        # test_server's wait needs only .device() and .janus: ours will do
        d, _ = t.Server.wait(self, t.flowing, 15, "the device online with fresh packets")
        self.pt = d["pt"]
        assert d["codec"] == "av1", d
        # The mountpoint gets our session's payload type; created now that we know it.
        r = self.janus.admin({"request": "create", "type": "rtp", "id": MOUNT_ID,
                              "name": "bench", "description": "the device's stream, teed",
                              "media": [{"type": "video", "mid": "v", "port": self.mount_port,
                                         "pt": self.pt, "codec": "av1",
                                         "iface": "127.0.0.1"}]},
                             plugin=STREAMING)
        assert r.get("streaming") == "created", r
        self.driver = Driver(self.janus.url)
        log(f"janus pid {self.janus.pid}, device pt {self.pt}, ingest :{self.ingest_port} "
            f"(tee {TEE_IP}), mountpoint :{self.mount_port}; {self.driver.version}")

    def stop(self):
        for f in (lambda: self.driver and self.driver.quit(),
                  lambda: self.kernel and (self.kernel.stop(), self.kernel.cleanup()),
                  self.janus.cleanup, self.tee.stop,
                  lambda: shutil.rmtree(self.plugin_dir, ignore_errors=True)):
            try:
                f()
            except Exception as e:  # noqa: BLE001 - tear everything down regardless
                log("cleanup:", e)

    def device(self):
        return self.janus.admin({"request": "status", "secret": t.SECRET, "id": DEVICE_ID},
                                plugin=OURS)["device"]

    def keyframe(self):
        self.janus.admin({"request": "keyframe", "secret": t.SECRET, "id": DEVICE_ID},
                         plugin=OURS)

    def open(self, plugin, n, timeout=30):
        """n viewers of plugin, each decoding (framesDecoded rising, the sent width)."""
        self.driver("open", plugin=plugin, id=DEVICE_ID if plugin == OURS else MOUNT_ID, n=n,
                    strip=self.args.no_extmap)
        t0 = time.monotonic()
        first = None
        last_kf = 0
        while time.monotonic() - t0 < timeout:
            st = self.driver("stats")["stats"]
            if all(s["framesDecoded"] > 0 and s.get("frameWidth") == self.width for s in st):
                if first is None:
                    first = [s["framesDecoded"] for s in st]
                elif all(s["framesDecoded"] > f for s, f in zip(st, first)):
                    return time.monotonic() - t0
            # The mountpoint cannot ask the device for a keyframe: ask through ours.
            if time.monotonic() - last_kf > 1.0:
                self.keyframe()
                last_kf = time.monotonic()
            time.sleep(0.25)
        raise AssertionError(f"{plugin}: {n} viewers not all decoding in {timeout} s: {st}")

    def window(self, plugin, n):
        """One measuring window with n viewers on plugin (n = 0: ingest only)."""
        if n:
            took = self.open(plugin, n)
        else:
            took = 0.0
        time.sleep(self.args.settle)
        pid = self.janus.pid
        s0 = self.driver("stats")["stats"] if n else []
        d0 = self.device()
        tee0 = self.tee.packets
        th0, tk0, m0 = threads(pid), proc_ticks(pid), machine_busy()
        w0 = time.monotonic()
        rss = []
        while time.monotonic() - w0 < self.args.window:
            time.sleep(min(1.0, self.args.window - (time.monotonic() - w0)))
            rss.append(status_kb(pid, "VmRSS"))
        th1, tk1, m1 = threads(pid), proc_ticks(pid), machine_busy()
        secs = time.monotonic() - w0
        tee1 = self.tee.packets
        d1 = self.device()
        s1 = self.driver("stats")["stats"] if n else []
        cpu, per = cpu_delta(th0, th1)
        got = sum(b["packetsReceived"] - a["packetsReceived"] for a, b in zip(s0, s1))
        frames = [b["framesDecoded"] - a["framesDecoded"] for a, b in zip(s0, s1)]
        lost = sum((b.get("packetsLost") or 0) - (a.get("packetsLost") or 0) for a, b in zip(s0, s1))
        if n:
            self.offers = getattr(self, "offers", {})
            self.offers.setdefault(plugin, self.driver("offers")["offers"][0])
            closed = self.driver("close")["closed"]
            assert closed == n, closed
            time.sleep(1.5)  # the handles and their loops go away before the next set-up
            assert min(frames) > 0, f"a viewer decoded nothing in the window: {frames}"
        busy = 100.0 * (1 - (m1[1] - m0[1]) / max(1, m1[0] - m0[0]))
        return {"plugin": plugin if n else "idle", "n": n, "secs": secs,
                "cpu": {k: v / secs for k, v in cpu.items() if k != "died"},  # ns per second
                "died": cpu["died"],
                "threads": {k: v / secs for k, v in per.items()},
                "ticks_ns_s": (tk1 - tk0) * 1e9 / os.sysconf("SC_CLK_TCK") / secs,
                "in_pps": (d1["packets"] - d0["packets"]) / secs,
                "tee_pps": (tee1 - tee0) / secs,
                "kbps": d1["bitrate_kbps"],
                "out_pps": got / secs, "lost": lost,
                "fps_min": min(frames) / secs if frames else 0.0,
                "rss_kb": max(rss), "hwm_kb": status_kb(pid, "VmHWM"),
                "busy_pct": busy, "setup_s": took}


def fmt_range(xs, scale=1.0, nd=0):
    xs = sorted(x * scale for x in xs)
    med = statistics.median(xs)
    return f"{med:.{nd}f} [{xs[0]:.{nd}f}-{xs[-1]:.{nd}f}]"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--viewers", default="1,4,8", help="comma-separated N (default 1,4,8)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=20.0, help="seconds per window")
    ap.add_argument("--settle", type=float, default=2.0,
                    help="seconds after the viewers decode, before the window")
    ap.add_argument("--kbps", type=int, default=2000)
    ap.add_argument("--size", default="320x240",
                    help="the test pattern's size (default 320x240: the same packets per second "
                         "as 640x480 at the same bitrate, for less encoder and decoder load)")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--no-extmap", action="store_true",
                    help="viewers answer without the offer's RTP header extensions (the Streaming "
                         "plugin offers mid and abs-send-time, ours none): the same packets out")
    ap.add_argument("--debug-level", type=int, default=4, help="Janus's (4: info, no per-packet logs)")
    ap.add_argument("--json", metavar="FILE", help="also write every window's figures here")
    ap.add_argument("--report", metavar="FILE", help="only print the report of an earlier --json")
    ap.add_argument("-v", "--verbose", action="store_true", help="each window, and every thread")
    args = ap.parse_args()
    ns = [int(x) for x in args.viewers.split(",") if x]
    if args.report:
        with open(args.report) as f:
            saved = json.load(f)
        for k, v in saved["args"].items():
            if k not in ("report", "json"):
                setattr(args, k, v)
        t.shutil.rmtree(t.WORK, ignore_errors=True)
        report(saved["windows"], [int(x) for x in args.viewers.split(",") if x], args)
        return

    b = Bench(args)
    results = []
    try:
        b.start()
        for r in range(args.rounds):
            order = [OURS, STREAMING] if r % 2 == 0 else [STREAMING, OURS]
            plan = [(None, 0)] + [(p, n) for n in ns for p in order]
            for plugin, n in plan:
                w = b.window(plugin, n)
                w["round"] = r
                results.append(w)
                c = w["cpu"]
                log(f"round {r} {w['plugin']:22s} N={n}: janus {c['total'] / 1e6:6.1f} ms/s "
                    f"(ours {c['ours'] / 1e6:.1f}, streaming {c['streaming'] / 1e6:.1f}, "
                    f"hloop {c['hloop'] / 1e6:.1f}, other {c['other'] / 1e6:.1f}); "
                    f"in {w['in_pps']:.0f} pkt/s, out {w['out_pps']:.0f} pkt/s, "
                    f"{w['fps_min']:.1f} fps min, lost {w['lost']}, RSS {w['rss_kb'] / 1024:.1f} MiB, "
                    f"machine {w['busy_pct']:.0f} % busy; {w['kbps']:.0f} kbit/s, "
                    f"utime+stime {w['ticks_ns_s'] / 1e6:.1f} ms/s"
                    + (f", {w['died']} threads died in the window" if w['died'] else ""))
                if args.verbose:
                    for comm, v in sorted(w["threads"].items(), key=lambda kv: -kv[1]):
                        if v > 1e5:
                            log(f"      {comm:16s} {v / 1e6:7.2f} ms/s")
        for p, sdp in getattr(b, "offers", {}).items():
            log(f"{p} offer: " + " | ".join(
                line for line in sdp.splitlines()
                if line.startswith(("a=rtpmap", "a=rtcp-fb", "a=fmtp", "a=extmap", "m="))))
    finally:
        b.stop()
        t.shutil.rmtree(t.WORK, ignore_errors=True)

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "windows": results}, f, indent=1)
    report(results, ns, args)


GROUPS = ("ours", "streaming", "hloop", "other")


def baseline(idle, w, g):
    """What group g would have cost in window w without viewers: the plugins'
    ingest threads scale with the packets that came in (the encoder's rate
    moves with the machine's load), the rest is per second."""
    if g in ("ours", "streaming"):
        return idle["cpu"][g] * w["in_pps"] / idle["in_pps"]
    return idle["cpu"][g]


def report(results, ns, args):
    idle = {w["round"]: w for w in results if w["n"] == 0}
    print(f"Janus 1.1.2, one process with both plugins; the device sends AV1 {args.size} "
          f"{args.fps} fps at {args.kbps} kbit/s; {args.rounds} rounds of {args.window:.0f} s "
          f"windows, interleaved. Figures: median [min-max] over rounds."
          + (" Viewers answered without header extensions (--no-extmap)." if args.no_extmap else ""))
    iw = list(idle.values())
    print(f"ingest only (0 viewers): {fmt_range([w['in_pps'] for w in iw])} pkt/s in; Janus "
          f"{fmt_range([w['cpu']['total'] for w in iw], 1e-6, 2)} ms CPU/s; per packet in: "
          f"ours 'outpost ingest' {fmt_range([w['cpu']['ours'] / w['in_pps'] for w in iw])} ns, "
          f"Streaming's relay thread {fmt_range([w['cpu']['streaming'] / w['in_pps'] for w in iw])} ns; "
          f"RSS {fmt_range([w['rss_kb'] for w in iw], 1 / 1024, 1)} MiB; "
          f"machine {fmt_range([w['busy_pct'] for w in iw])} % busy")
    print()
    cols = ("whole Janus", "plugin thread", "core hloops", "other threads", "RSS MiB", "busy %")
    print("ns per packet per viewer = (CPU - the same round's 0-viewer CPU, its ingest threads "
          "scaled to this window's packets in) / packets the viewers received; Janus RSS; how "
          "busy the whole machine was")
    print(f"{'plugin':10s} {'N':>2s} {'out pkt/s':>9s}  " + "  ".join(f"{c:>22s}" for c in cols))
    med = {}
    for n in ns:
        for p, name in ((OURS, "outpost"), (STREAMING, "streaming")):
            ws = [w for w in results if w["n"] == n and w["plugin"] == p]
            if not ws:
                continue
            own = "ours" if p == OURS else "streaming"
            tot, plug, core, oth = [], [], [], []
            for w in ws:
                i = idle[w["round"]]
                o = w["out_pps"]
                base = {g: baseline(i, w, g) for g in GROUPS}
                tot.append((w["cpu"]["total"] - sum(base.values())) / o)
                plug.append((w["cpu"][own] - base[own]) / o)
                core.append((w["cpu"]["hloop"] - base["hloop"]) / o)
                oth.append((w["cpu"]["other"] - base["other"]) / o)
            med[(name, n)] = (statistics.median(tot), statistics.median(plug),
                              statistics.median(core))
            cells = (fmt_range(tot), fmt_range(plug), fmt_range(core), fmt_range(oth),
                     fmt_range([w["rss_kb"] for w in ws], 1 / 1024, 1),
                     fmt_range([w["busy_pct"] for w in ws]))
            print(f"{name:10s} {n:2d} {statistics.median([w['out_pps'] for w in ws]):9.0f}  "
                  + "  ".join(f"{c:>22s}" for c in cells))
    print()
    for n in ns:
        if ("outpost", n) in med and ("streaming", n) in med:
            a, s = med[("outpost", n)], med[("streaming", n)]
            print(f"N={n}: ours/Streaming, ns per packet per viewer (medians): whole Janus "
                  f"{a[0] / s[0]:.2f}, plugin thread {a[1] / s[1]:.2f}, core hloops {a[2] / s[2]:.2f}")
    hwm = max(w["hwm_kb"] for w in results)
    print(f"Janus VmHWM over the run: {hwm / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
