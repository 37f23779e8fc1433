"""outpost-impair in three namespaces of its own: imptest-a -- imptest-m -- imptest-b.

m forwards between two veth pairs and queues every forwarded IPv4 packet to
NFQUEUE 0, where outpost-impair runs. a sends numbered, timestamped UDP
datagrams at a steady rate; b records what arrives and when. All namespaces
share CLOCK_MONOTONIC, so b's arrival time minus a's send time is the one-way
delay. Needs root. The binary: $OUTPOST_IMPAIR, else $OUTPOST_BUILD/bin/
outpost-impair, else <repo>/build/bin/outpost-impair (ASan+UBSan welcome).

This kernel has no nft "queue" expression (CONFIG_NFT_QUEUE unset), so the rule
is tried as nft first and falls back to iptables' NFQUEUE target (xt, through
nft's compat layer), which is what the kernel has."""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernel"))
from harness import run_cases  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("OUTPOST_BUILD", os.path.join(REPO, "build"))
BIN = os.environ.get("OUTPOST_IMPAIR", os.path.join(BUILD, "bin", "outpost-impair"))
A, M, B = "imptest-a", "imptest-m", "imptest-b"
A_IP, B_IP, PORT = "10.231.1.1", "10.231.2.2", 5000
WORK = tempfile.mkdtemp(prefix="imptest-")
os.environ.setdefault("ASAN_OPTIONS", "detect_leaks=1")
os.environ.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")

SENDER = r"""
import socket, struct, sys, time
dst, port, count, spacing = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t0 = time.monotonic()
for seq in range(count):
    due = t0 + seq * spacing / 1000
    while time.monotonic() < due:
        time.sleep(max(0, due - time.monotonic() - 0.0002))
    s.sendto(struct.pack("!Iq", seq, time.monotonic_ns()) + bytes(32), (dst, port))
"""

# Ends 0.6 s after the last datagram (or at the deadline); prints [[seq, one_way_ms], ...].
RECEIVER = r"""
import json, socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
deadline = time.monotonic() + float(sys.argv[3])
print("ready", flush=True)
got, last = [], None
while time.monotonic() < deadline and (last is None or time.monotonic() - last < 0.6):
    s.settimeout(0.1)
    try:
        data = s.recv(2048)
    except socket.timeout:
        continue
    now = time.monotonic_ns()
    seq, sent = struct.unpack("!Iq", data[:12])
    got.append([seq, (now - sent) / 1e6])
    last = time.monotonic()
print(json.dumps(got))
"""


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def ns(name, *cmd, check=True):
    return sh("ip", "netns", "exec", name, *cmd, check=check)


def cleanup():
    """Ours only (imptest-*): never another session's namespaces."""
    for line in sh("ip", "netns", "list").stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith("imptest-"):
            continue
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", name, check=False)


def setup():
    for n in (A, M, B):
        sh("ip", "netns", "add", n)
        ns(n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        ns(n, "ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "imp-a0", "netns", A, "type", "veth", "peer", "imp-ma", "netns", M)
    sh("ip", "link", "add", "imp-b0", "netns", B, "type", "veth", "peer", "imp-mb", "netns", M)
    for n, dev, addr in ((A, "imp-a0", A_IP), (M, "imp-ma", "10.231.1.2"),
                         (M, "imp-mb", "10.231.2.1"), (B, "imp-b0", B_IP)):
        ns(n, "ip", "addr", "add", addr + "/24", "dev", dev)
        ns(n, "ip", "link", "set", dev, "up")
    ns(A, "ip", "route", "add", "default", "via", "10.231.1.2")
    ns(B, "ip", "route", "add", "default", "via", "10.231.2.1")
    ns(M, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    nft = ("table inet imp { chain forward { type filter hook forward priority 0; "
           "policy accept; queue num 0 bypass; } }")
    if ns(M, "nft", nft, check=False).returncode != 0:
        ns(M, "iptables", "-A", "FORWARD", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass")
    # Resolve the neighbours now (bypass: no listener yet), so that no test
    # packet waits for ARP.
    flow(5, 1, deadline=3)


def flow(count, spacing_ms, deadline=None, during=None):
    """count datagrams a -> b; returns b's [[seq, one_way_ms], ...] in arrival order."""
    rx = subprocess.Popen(["ip", "netns", "exec", B, sys.executable, "-c", RECEIVER, B_IP,
                           str(PORT), str(deadline or count * spacing_ms / 1000 + 10)],
                          stdout=subprocess.PIPE, text=True)
    assert rx.stdout.readline().strip() == "ready"
    ns(A, sys.executable, "-c", SENDER, B_IP, str(PORT), str(count), str(spacing_ms))
    if during:
        during()
    out, _ = rx.communicate(timeout=120)
    return json.loads(out)


class Impair:
    current = None  # one at a time: queue 0 can have only one listener

    def __init__(self, *opts):
        if Impair.current and Impair.current.proc.poll() is None:
            Impair.current.proc.kill()  # left running by a failed test
            Impair.current.proc.communicate()
        Impair.current = self
        self.stats_path = os.path.join(WORK, "stats.json")
        if os.path.exists(self.stats_path):
            os.unlink(self.stats_path)
        self.proc = subprocess.Popen(["ip", "netns", "exec", M, BIN, "--queue", "0", "--seed", "7",
                                      "--stats", self.stats_path, *opts],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The first stats file is written once the queue is bound.
        for _ in range(100):
            if os.path.exists(self.stats_path) or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        assert os.path.exists(self.stats_path), "impair did not start: " + self.stop_raw()[1]

    def stop_raw(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return out, err

    def stop(self):
        out, err = self.stop_raw()
        assert self.proc.returncode == 0, f"exit {self.proc.returncode}: {err}"
        assert "Sanitizer" not in err and "runtime error" not in err, err
        printed = json.loads(out)
        with open(self.stats_path) as f:
            written = json.load(f)
        assert printed == written, (printed, written)
        assert written["held"] == 0 and written["enobufs"] == 0, written
        assert written["kernel_dropped"] == 0 and written["verdict_errors"] == 0, written
        return written


def late_arrivals(got):
    """Arrivals whose number is below one already seen: each overtaken packet once."""
    top, late = -1, 0
    for seq, _ in got:
        late += seq < top
        top = max(top, seq)
    return late


def loss_runs(got, count):
    seen = {s for s, _ in got}
    runs, run = [], 0
    for s in range(count):
        if s in seen:
            if run:
                runs.append(run)
            run = 0
        else:
            run += 1
    return runs + ([run] if run else [])


def test_options():
    """A bad or misspelt value exits 2 naming the option (before touching any queue)."""
    for args, name in ((["--delay", "5"], "--queue"),
                       (["--queue", "0", "--delay", "1O0"], "--delay"),
                       (["--queue", "0", "--re", "5"], "ambiguous"),
                       (["--queue", "0", "--dealy", "100"], "dealy"),
                       (["--queue", "0", "--loss", "120"], "--loss"),
                       (["--queue", "0", "--ge", "1"], "--ge"),
                       (["--queue", "0", "--burst", "0,5"], "--burst"),
                       (["--queue", "0", "--max-held", "-1"], "--max-held")):
        r = subprocess.run([BIN, *args], capture_output=True, text=True)
        assert r.returncode == 2 and name in r.stderr, (args, r.returncode, r.stderr)


def test_delay():
    imp = Impair("--delay", "100")
    got = flow(200, 2)
    st = imp.stop()
    d = sorted(ms for _, ms in got)
    med = statistics.median(d)
    print(f"  delay 100: {len(got)}/200 arrived, one-way min {d[0]:.1f} median {med:.1f} "
          f"p95 {d[189]:.1f} max {d[-1]:.1f} ms; impair mean {st['delay_mean_ms']:.2f} max "
          f"{st['delay_max_ms']:.2f} late_max {st['late_max_ms']:.3f} ms")
    assert len(got) == 200 and st["seen"] == 200 and st["accepted"] == 200, st
    assert d[0] >= 100 and med < 130, (d[0], med)
    assert late_arrivals(got) == 0


def test_loss():
    imp = Impair("--loss", "10")
    got = flow(1000, 1)
    st = imp.stop()
    lost = 1000 - len(got)
    print(f"  loss 10: lost {lost}/1000 = {lost / 10:.1f} %; impair dropped_random "
          f"{st['dropped_random']}")
    assert 50 <= lost <= 150, lost
    assert st["seen"] == 1000 and st["dropped_random"] == lost and st["accepted"] == len(got), st


def test_burst():
    imp = Impair("--burst", "5,1")
    got = flow(3000, 1)
    st = imp.stop()
    runs = loss_runs(got, 3000)
    mean = statistics.mean(runs) if runs else 0
    print(f"  burst 5,1: lost {3000 - len(got)}/3000 in {len(runs)} runs, mean run {mean:.2f} "
          f"(longest {max(runs, default=0)}); impair dropped_burst {st['dropped_burst']}")
    assert len(runs) >= 10 and 3 <= mean <= 8, runs
    assert st["seen"] == 3000 and st["dropped_burst"] == 3000 - len(got), st


def test_jitter_keeps_order():
    imp = Impair("--delay", "50", "--jitter", "30")
    got = flow(500, 2)
    st = imp.stop()
    d = [ms for _, ms in got]
    print(f"  jitter 30: {len(got)}/500, one-way {min(d):.1f}..{max(d):.1f} ms, "
          f"out of order {late_arrivals(got)}, impair reordered {st['reordered']}")
    assert len(got) == 500 and late_arrivals(got) == 0 and st["reordered"] == 0
    assert min(d) >= 20 and max(d) - min(d) > 20, (min(d), max(d))


def test_reorder():
    imp = Impair("--delay", "50", "--jitter", "10", "--reorder", "20")
    got = flow(500, 2)
    st = imp.stop()
    late = late_arrivals(got)
    print(f"  reorder 20 (jitter 10, gap 30): {len(got)}/500, out of order at b {late}, "
          f"impair reordered {st['reordered']}")
    assert len(got) == 500 and 50 <= late <= 150 and late == st["reordered"], (late, st)


def test_max_held():
    imp = Impair("--delay", "1000", "--max-held", "50")
    got = flow(200, 2)
    st = imp.stop()
    print(f"  max-held 50 at delay 1000: {len(got)}/200 arrived, dropped_overflow "
          f"{st['dropped_overflow']}, max_held {st['max_held']}")
    assert len(got) == 50 and st["dropped_overflow"] == 150 and st["max_held"] == 50, st


def test_stats_live():
    imp = Impair("--delay", "3000")
    ns(A, sys.executable, "-c", SENDER, B_IP, str(PORT), "20", "2")
    time.sleep(0.2)
    os.kill(imp.proc.pid, signal.SIGUSR1)  # ip netns exec execs: the pid is impair's
    time.sleep(0.2)
    with open(imp.stats_path) as f:
        now = json.load(f)
    mtime = os.stat(imp.stats_path).st_mtime_ns
    time.sleep(1.3)
    assert os.stat(imp.stats_path).st_mtime_ns != mtime, "not rewritten within a second"
    st = imp.stop()
    print(f"  SIGUSR1 while holding: seen {now['seen']} held {now['held']}; at exit accepted "
          f"{st['accepted']}")
    assert now["seen"] == 20 and now["held"] == 20 and now["accepted"] == 0, now
    assert st["accepted"] == 20, st


def test_exit_releases_held():
    imp = Impair("--delay", "5000")
    state = {}

    def stop_early():
        state["t"] = time.monotonic()
        state["st"] = imp.stop()

    got = flow(50, 2, deadline=8, during=stop_early)
    d = [ms for _, ms in got]
    print(f"  SIGTERM with 50 held at delay 5000: {len(got)}/50 arrived, one-way max "
          f"{max(d, default=0):.0f} ms")
    assert len(got) == 50 and max(d) < 2000 and state["st"]["accepted"] == 50, state


def main():
    if os.geteuid() != 0:
        print("test_impair.py needs root (network namespaces)")
        sys.exit(1)
    if not os.access(BIN, os.X_OK):
        print(f"no binary at {BIN}: set OUTPOST_IMPAIR")
        sys.exit(1)
    cleanup()
    try:
        setup()
        run_cases([test_options, test_delay, test_loss, test_burst, test_jitter_keeps_order,
                   test_reorder, test_max_held, test_stats_live, test_exit_releases_held])
    finally:
        cleanup()
        subprocess.run(["rm", "-rf", WORK])


if __name__ == "__main__":
    main()
