"""The link lab: a cellular-like link between a device and the server, made of
real kernel parts on this machine (no netem here: tbf, nft and NFQUEUE).

    device ns                link ns (the carrier)                server ns
    dev0 10.77.1.2 --- ld 10.77.1.1 | ls 10.77.2.1 --- srv0 10.77.2.2
                                                            mg0 10.79.N.2
    root ns (the test, the browser)  olabmN 10.79.N.1 -------'

Everything that impairs lives in the link namespace, on the forwarding path:
  - rate: tbf on the link's egress towards each side (its `latency` is the
    modem's buffer, i.e. bufferbloat);
  - random loss: nft `numgen random`; delay, jitter, reordering and burst
    loss: NFQUEUE (the iptables target: this kernel lacks nft's queue) and
    tests/link/impair.c, one per direction;
  - outage: nft drop rules, no RST, each direction on its own or both;
  - carrier NAT: nft masquerade with random ports, on by default; rebind()
    forgets the device's mappings so its next packets leave from new ports;
  - UDP blocked: every UDP datagram dropped, TCP passes.
The nft counters in the link namespace are the carrier's bill: the bytes of
every IP packet (headers included) as it enters the link, each way, per
protocol, before any impairment drops it. Packets cross the link one IP
packet each, as over a radio: the device's and the server's interfaces make
no GSO super-packets (gso_max_segs 1), which the bill would count with one
set of headers for many TCP segments (~1 % of the bytes of media riding the
control connection, tests/link/test_bytes.py) and the impairers would drop
or delay whole.

The test process stays in the root namespace and reaches Janus over the
management pair (mgmt_ip); processes go into a namespace with
preexec(ns) (setns on the child before exec). Namespaces are named
olab<N>-{dev,link,srv}; /run/outpost-lab/<N>.pid names the process that owns
lab N, and every new lab first sweeps labs whose owner is gone (a kill -9 of
a test leaves nothing behind for longer than the next start): the processes
inside are killed first, then the namespaces are deleted.

    with Lab() as lab:
        lab.impair("up", delay=100, jitter=15)
        lab.rate("up", 500)
        bill = lab.bill()
"""
import ctypes
import json
import os
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.environ.get("OUTPOST_BUILD", os.path.join(HERE, "..", "..", "build"))
IMPAIR = os.environ.get("OUTPOST_IMPAIR", os.path.join(BUILD, "bin", "outpost-impair"))
RUN_DIR = "/run/outpost-lab"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

DEVICE_IP = "10.77.1.2"
LINK_DEVICE_SIDE = "10.77.1.1"
LINK_SERVER_SIDE = "10.77.2.1"
SERVER_IP = "10.77.2.2"
# Interfaces of the link namespace: packets from the device enter on LD and
# leave on LS ("up"), the server's answers the other way ("down").
LD, LS = "ld", "ls"
DIRS = {"up": (LD, LS), "down": (LS, LD)}  # direction -> (in, out) interface
QUEUE = {"up": 0, "down": 1}


class LabError(Exception):
    pass


def _sh(argv, check=True, ns=None, input=None):
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    r = subprocess.run(argv, capture_output=True, text=True, input=input)
    if check and r.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _netns_list():
    out = _sh(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_inside(ns):
    """SIGKILL to every process in namespace ns (they outlive its deletion)."""
    for _ in range(20):
        pids = [int(p) for p in _sh(["ip", "netns", "pids", ns], check=False).split()]
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _delete_lab(n):
    for role in ("dev", "link", "srv"):
        ns = f"olab{n}-{role}"
        if ns in _netns_list():
            _kill_inside(ns)
            _sh(["ip", "netns", "delete", ns], check=False)
    _sh(["ip", "link", "delete", f"olabm{n}"], check=False)  # gone with srv, normally
    try:
        os.unlink(os.path.join(RUN_DIR, f"{n}.pid"))
    except FileNotFoundError:
        pass


def sweep():
    """Deletes every lab whose owning process is gone; returns their numbers."""
    swept = set()
    for ns in _netns_list():
        if not (ns.startswith("olab") and "-" in ns):
            continue
        n = ns[4:].split("-", 1)[0]
        if not n.isdigit():
            continue
        try:
            owner = int(open(os.path.join(RUN_DIR, f"{n}.pid")).read())
        except (OSError, ValueError):
            owner = 0
        if not owner or not _alive(owner):
            swept.add(int(n))
    for n in sorted(swept):
        _delete_lab(n)
    return sorted(swept)


def _claim():
    """The lowest free lab number, recorded as ours (O_EXCL: two labs starting at
    once never take the same one)."""
    os.makedirs(RUN_DIR, exist_ok=True)
    for n in range(1, 250):
        path = os.path.join(RUN_DIR, f"{n}.pid")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return n
    raise LabError("250 labs in use")


class Lab:
    def __init__(self, nat=True):
        self.n = None
        self.nat = nat
        self.impairers = {}  # direction -> (Popen, stats path)
        self.ready_s = None

    # --- names
    def ns(self, role):
        return f"olab{self.n}-{role}"

    @property
    def mgmt_ip(self):
        """The server namespace's address the root namespace reaches."""
        return f"10.79.{self.n}.2"

    @property
    def root_ip(self):
        return f"10.79.{self.n}.1"

    def preexec(self, role, then=None):
        """A preexec_fn that moves the child into namespace `role` (dev, link, srv)."""
        path = f"/run/netns/{self.ns(role)}"

        def enter():
            fd = os.open(path, os.O_RDONLY)
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                os._exit(126)
            os.close(fd)
            if then:
                then()
        return enter

    def popen(self, role, argv, **kw):
        return subprocess.Popen(argv, preexec_fn=self.preexec(role, kw.pop("then", None)), **kw)

    def sh(self, role, argv, check=True, input=None):
        return _sh(argv, check=check, ns=self.ns(role), input=input)

    # --- life cycle
    def up(self):
        t0 = time.monotonic()
        sweep()
        self.n = _claim()
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        self.ready_s = time.monotonic() - t0
        return self

    def _build(self):
        dev, link, srv = self.ns("dev"), self.ns("link"), self.ns("srv")
        for ns in (dev, link, srv):
            _sh(["ip", "netns", "add", ns])
        # One batch of `ip` commands per namespace keeps set-up well under a second.
        _sh(["ip", "-batch", "-"], input="\n".join([
            f"link add dev0 netns {dev} type veth peer name {LD} netns {link}",
            f"link add {LS} netns {link} type veth peer name srv0 netns {srv}",
            f"link add olabm{self.n} type veth peer name mg0 netns {srv}",
            f"addr add {self.root_ip}/30 dev olabm{self.n}",
            f"link set olabm{self.n} up",
        ]) + "\n")
        _sh(["ip", "-n", dev, "-batch", "-"], input="\n".join([
            "link set lo up", f"addr add {DEVICE_IP}/24 dev dev0", "link set dev0 up",
            "link set dev0 gso_max_segs 1",
            f"route add default via {LINK_DEVICE_SIDE}"]) + "\n")
        _sh(["ip", "-n", link, "-batch", "-"], input="\n".join([
            "link set lo up", f"addr add {LINK_DEVICE_SIDE}/24 dev {LD}", f"link set {LD} up",
            f"addr add {LINK_SERVER_SIDE}/24 dev {LS}", f"link set {LS} up"]) + "\n")
        _sh(["ip", "-n", srv, "-batch", "-"], input="\n".join([
            "link set lo up", f"addr add {SERVER_IP}/24 dev srv0", "link set srv0 up",
            "link set srv0 gso_max_segs 1",
            f"addr add {self.mgmt_ip}/30 dev mg0", "link set mg0 up",
            f"route add 10.77.1.0/24 via {LINK_SERVER_SIDE}"]) + "\n")
        self.sh("link", ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        # Mid-stream TCP without a mapping is what a NAT that forgot it sees:
        # strict (not picked up) so a forgotten mapping is a dead connection.
        self.sh("link", ["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"], check=False)
        self.sh("link", ["nft", "-f", "-"], input=self._ruleset())

    def _ruleset(self):
        counters = "".join(f"  counter {d}_{p}{o} {{}}\n" for d in DIRS for p in ("udp", "tcp", "other")
                           for o in ("", "_out"))
        out = "".join(
            f"    iifname {DIRS[d][0]} meta l4proto udp counter name {d}_udp_out\n"
            f"    iifname {DIRS[d][0]} meta l4proto tcp counter name {d}_tcp_out\n"
            f"    iifname {DIRS[d][0]} meta l4proto != {{ udp, tcp }} counter name {d}_other_out\n"
            for d in DIRS)
        bill = "".join(
            f"    iifname {DIRS[d][0]} meta l4proto udp counter name {d}_udp\n"
            f"    iifname {DIRS[d][0]} meta l4proto tcp counter name {d}_tcp\n"
            f"    iifname {DIRS[d][0]} meta l4proto != {{ udp, tcp }} counter name {d}_other\n"
            for d in DIRS)
        nat = (f"table ip labnat {{\n  chain post {{\n    type nat hook postrouting priority 100;\n"
               f"    oifname {LS} masquerade random\n  }}\n}}\n") if self.nat else ""
        # bill (priority -300) -> faults (-200: outage, blocked UDP, invalid
        # mid-stream TCP) -> loss (-100) -> the impairers' queues (iptables'
        # FORWARD, priority 0: this kernel has no nft queue expression, but
        # the xtables NFQUEUE target works) -> delivered (300: what passed all
        # of it, before tbf, which may still drop).
        return (f"table inet lab {{\n{counters}"
                f"  chain bill {{\n    type filter hook forward priority -300; policy accept;\n{bill}  }}\n"
                f"  chain faults {{\n    type filter hook forward priority -200; policy accept;\n"
                f"    ct state invalid drop\n  }}\n"
                f"  chain delivered {{\n    type filter hook forward priority 300; policy accept;\n"
                f"{out}  }}\n"
                f"  chain loss {{\n    type filter hook forward priority -100; policy accept;\n  }}\n"
                f"}}\n{nat}")

    def down(self):
        for d in list(self.impairers):
            self._stop_impairer(d)
        if self.n is not None:
            _delete_lab(self.n)
            self.n = None

    def __enter__(self):
        return self.up()

    def __exit__(self, *exc):
        self.down()

    # --- faults
    def _rule(self, chain, rule, comment):
        """Adds a rule tagged `comment` (replacing an earlier one with that tag)."""
        self._unrule(chain, comment)
        self.sh("link", ["nft", f"add rule inet lab {chain} {rule} comment \"{comment}\""])

    def _unrule(self, chain, comment):
        out = self.sh("link", ["nft", "-a", "list", "chain", "inet", "lab", chain])
        for line in out.splitlines():
            if f'comment "{comment}"' in line and "# handle " in line:
                handle = line.rsplit("# handle ", 1)[1].strip()
                self.sh("link", ["nft", "delete", "rule", "inet", "lab", chain, "handle", handle])

    def _dirs(self, direction):
        if direction == "both":
            return list(DIRS)
        if direction not in DIRS:
            raise LabError(f"direction must be up, down or both, not {direction!r}")
        return [direction]

    def outage(self, direction="both"):
        """Silently drops everything (no RST, no ICMP): a dead radio."""
        for d in self._dirs(direction):
            self._rule("faults", f"iifname {DIRS[d][0]} drop", f"outage-{d}")

    def restore(self, direction="both"):
        """Ends an outage."""
        for d in self._dirs(direction):
            self._unrule("faults", f"outage-{d}")

    def block_udp(self, on=True):
        """A network that passes only TCP."""
        if on:
            self._rule("faults", "meta l4proto udp drop", "udp-blocked")
        else:
            self._unrule("faults", "udp-blocked")

    def block_tcp(self, on=True):
        """The control connection dies silently while UDP still passes."""
        if on:
            self._rule("faults", "meta l4proto tcp drop", "tcp-blocked")
        else:
            self._unrule("faults", "tcp-blocked")

    def cellular(self, rtt, loss):
        """The benchmarks' link: rtt ms split over both directions with 10 %
        jitter (seeded: the same in every run), and loss % on the way up."""
        if rtt:
            for d, seed in (("up", 1), ("down", 2)):
                self.impair(d, delay=rtt / 2, jitter=rtt / 20, seed=seed)
        if loss:
            self.loss(loss, "up")

    def loss(self, pct, direction="up"):
        """Independent random loss of pct % of the packets (0 removes it)."""
        for d in self._dirs(direction):
            if pct <= 0:
                self._unrule("loss", f"loss-{d}")
            else:
                n = int(round(pct * 100))
                self._rule("loss", f"iifname {DIRS[d][0]} numgen random mod 10000 < {n} drop",
                           f"loss-{d}")

    def rate(self, direction, kbit, buffer_ms=200, burst=3000):
        """Caps the rate towards `direction` with tbf; kbit None removes the cap.
        buffer_ms is how long a full modem buffer holds a packet."""
        for d in self._dirs(direction):
            dev = DIRS[d][1]
            if kbit is None:
                self.sh("link", ["tc", "qdisc", "del", "dev", dev, "root"], check=False)
            else:
                self.sh("link", ["tc", "qdisc", "replace", "dev", dev, "root", "tbf", "rate",
                                 f"{kbit}kbit", "burst", str(burst), "latency", f"{buffer_ms}ms"])

    def qdisc(self, direction):
        """The rate cap's queue towards `direction` (tc -s): {"bytes", "packets",
        "drops", "backlog" (bytes waiting), "rate_kbit"}; None without a cap."""
        out = json.loads(self.sh("link", ["tc", "-s", "-j", "qdisc", "show", "dev",
                                          DIRS[direction][1]]))
        for q in out:
            if q.get("kind") == "tbf":
                return {"bytes": q["bytes"], "packets": q["packets"], "drops": q["drops"],
                        "backlog": q["backlog"], "rate_kbit": q["options"]["rate"] * 8 // 1000}
        return None

    def impair(self, direction, **opts):
        """Delay, jitter, reordering, burst loss through outpost-impair on this
        direction's queue; opts are its long options (delay=100, jitter=15,
        burst="5,1", loss=3, reorder=5, seed=1). No opts: removed."""
        for d in self._dirs(direction):
            self._stop_impairer(d)
            if not opts:
                continue
            stats = tempfile.NamedTemporaryFile(prefix=f"olab{self.n}-{d}-", suffix=".json",
                                                dir="/dev/shm", delete=False).name
            argv = [IMPAIR, "--queue", str(QUEUE[d]), "--stats", stats]
            for k, v in opts.items():
                argv += [f"--{k.replace('_', '-')}", str(v)]
            proc = self.popen("link", argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.impairers[d] = (proc, stats)
            # The rule only once the program listens: `bypass` passes packets
            # straight through while nobody is bound to the queue.
            deadline = time.monotonic() + 5
            while not os.path.getsize(stats):
                if proc.poll() is not None:
                    raise LabError(f"outpost-impair exited: {proc.stdout.read().decode()}")
                if time.monotonic() > deadline:
                    raise LabError("outpost-impair wrote no stats within 5 s")
                time.sleep(0.01)
            self.sh("link", ["iptables", "-A", "FORWARD"] + self._queue_rule(d))

    @staticmethod
    def _queue_rule(d):
        return ["-i", DIRS[d][0], "-j", "NFQUEUE", "--queue-num", str(QUEUE[d]), "--queue-bypass"]

    def impair_stats(self, direction):
        _, stats = self.impairers[direction]
        with open(stats) as f:
            return json.load(f)

    def _stop_impairer(self, d):
        if d not in self.impairers:
            return
        proc, stats = self.impairers.pop(d)
        if self.n is not None:
            self.sh("link", ["iptables", "-D", "FORWARD"] + self._queue_rule(d), check=False)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out = proc.stdout.read().decode(errors="replace")
        proc.stdout.close()
        try:
            os.unlink(stats)
        except FileNotFoundError:
            pass
        for mark in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if mark in out:
                raise LabError(f"sanitizer report from outpost-impair:\n{out}")

    # --- carrier NAT
    def rebind(self, proto="udp"):
        """The carrier NAT forgets the device's mappings of `proto` (udp, tcp or
        all): its next packets leave from new ports. A forgotten TCP mapping
        is a dead connection (mid-stream packets are not picked up again)."""
        argv = ["conntrack", "-D", "-s", DEVICE_IP]
        if proto != "all":
            argv += ["-p", proto]
        self.sh("link", argv, check=False)  # exit 1 when there was nothing to delete

    def nat_timeout(self, udp_s=None, udp_stream_s=None):
        """The NAT's UDP mapping timeouts (Linux: 30 s, and 120 s once both
        directions were seen)."""
        if udp_s is not None:
            self.sh("link", ["sysctl", "-qw", f"net.netfilter.nf_conntrack_udp_timeout={udp_s}"])
        if udp_stream_s is not None:
            self.sh("link", ["sysctl", "-qw",
                             f"net.netfilter.nf_conntrack_udp_timeout_stream={udp_stream_s}"])

    def mappings(self):
        """The NAT's current mappings for the device: [(proto, device port, public port)]."""
        out = self.sh("link", ["conntrack", "-L", "-s", DEVICE_IP], check=False)
        rows = []
        for line in out.splitlines():
            f = line.split()
            if not f or f[0] not in ("udp", "tcp"):
                continue
            kv = [x.split("=", 1) for x in f if "=" in x]
            sports = [v for k, v in kv if k == "sport"]
            dports = [v for k, v in kv if k == "dport"]
            if len(sports) >= 2 and len(dports) >= 2:
                rows.append((f[0], int(sports[0]), int(dports[1])))
        return rows

    # --- the bill
    def bill(self):
        """Bytes and packets that entered the link each way, per protocol:
        {"up": {"udp": (bytes, packets), "tcp": ..., "other": ...}, "down": ...}."""
        out = json.loads(self.sh("link", ["nft", "-j", "list", "counters", "table", "inet", "lab"]))
        return self._counters(out, "")

    def delivered(self):
        """What left the link each way, in the bill's shape: what entered it
        less what the lab's faults, loss and impairers dropped (tbf's drops,
        after this point, are in `tc -s qdisc`)."""
        out = json.loads(self.sh("link", ["nft", "-j", "list", "counters", "table", "inet", "lab"]))
        return self._counters(out, "_out")

    @staticmethod
    def _counters(out, suffix):
        res = {d: {} for d in DIRS}
        for item in out["nftables"]:
            c = item.get("counter")
            if c and c["name"].count("_") == (2 if suffix else 1) and c["name"].endswith(suffix):
                d, p = c["name"].split("_")[:2]
                res[d][p] = (c["bytes"], c["packets"])
        return res

    def clear(self):
        """Every impairment off (counters kept)."""
        for d in DIRS:
            self._stop_impairer(d)
            self.rate(d, None)
        for chain in ("faults", "loss"):
            self.sh("link", ["nft", "flush", "chain", "inet", "lab", chain])
        self.sh("link", ["nft", "add", "rule", "inet", "lab", "faults", "ct", "state", "invalid",
                         "drop"])


def bill_bytes(bill, direction=None, proto=None):
    """Sum of a bill's bytes over a direction and/or protocol (None: all)."""
    return sum(b for d, per in bill.items() if direction in (None, d)
               for p, (b, _) in per.items() if proto in (None, p))


def bill_diff(after, before):
    return {d: {p: (after[d][p][0] - before[d][p][0], after[d][p][1] - before[d][p][1])
                for p in after[d]} for d in after}
