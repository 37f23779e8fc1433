"""A UDP middlebox between a device's uplink and the plugin, on loopback: the
device sends to `port` (the plugin's ingest_public_port), the relay passes
what it gets to the plugin from its own `upstream` socket, and the plugin's
RTCP back to the device. It can drop a share of the RTP packets (seeded, so
repeatable), change its upstream socket mid-stream (a NAT rebinding: the
device's packets suddenly come from another port), and keeps the last RTP
packets it passed so a test can replay or tamper with them. With `delay` (s)
every packet waits that long in each direction, RTP and RTCP alike: a fixed
round trip of twice that, as a cellular link has (nothing is reordered). (The
link lab of a later issue does this with namespaces; this is the loopback
miniature.)"""
import heapq
import itertools
import random
import select
import socket
import threading
import time


def is_rtcp(data):
    return len(data) > 1 and 192 <= data[1] <= 223


class Relay(threading.Thread):
    def __init__(self, plugin_port, port, loss=0.0, seed=7, delay=0.0):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.settimeout(0.05)
        self.port = port
        self.plugin = ("127.0.0.1", plugin_port)
        self.upstream = self._new_upstream()
        self.loss, self.rng = loss, random.Random(seed)
        self.device = None
        self.dropped = self.passed = self.back = 0
        # Drops of a sequence number's first transmission (a retransmission
        # dropped is no new loss to the receiver); the numbers seen so far.
        self.dropped_first = 0
        self._seen = set()
        self.recent = []  # the last RTP packets passed, newest last
        # The next `tamper` RTP packets are changed in flight (a payload byte
        # flipped) instead of passed; with tamper_from_new they also come from
        # a stranger's port. Their originals never arrive.
        self.tamper = 0
        self.tamper_from_new = False
        self.tampered = 0
        self.lock = threading.Lock()
        self.running = True
        # Packets held back by the delay: (due, order, "up" | "down", data),
        # sent by their own thread at their time.
        self.delay = delay
        self._held = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._sender = threading.Thread(target=self._send_held, daemon=True)

    @staticmethod
    def _new_upstream():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        return s

    @property
    def upstream_port(self):
        return self.upstream.getsockname()[1]

    def rebind(self):
        """From now on the plugin sees the device's packets from a new port."""
        with self.lock:
            old, self.upstream = self.upstream, self._new_upstream()
        old.close()
        return self.upstream_port

    def _hold(self, way, data):
        with self._cv:
            heapq.heappush(self._held, (time.monotonic() + self.delay, next(self._order), way,
                                        data))
            self._cv.notify()

    def _send_held(self):
        while True:
            with self._cv:
                while self.running and (not self._held or
                                        self._held[0][0] > time.monotonic()):
                    self._cv.wait(self._held[0][0] - time.monotonic() if self._held else None)
                if not self.running:
                    return
                _, _, way, data = heapq.heappop(self._held)
            try:
                if way == "down":
                    self.sock.sendto(data, self.device)
                else:
                    self._up(data)
            except OSError:
                pass

    def _up(self, data):
        with self.lock:
            self.upstream.sendto(data, self.plugin)
            if not is_rtcp(data):
                self.recent = (self.recent + [data])[-64:]

    def _pump_back(self):
        """The plugin's RTCP, to the device (from any upstream socket we hold)."""
        with self.lock:
            up = self.upstream
        while True:
            try:
                data, _ = up.recvfrom(2048)
            except (BlockingIOError, OSError):
                return
            self.back += 1
            if self.device and self.delay > 0:
                self._hold("down", data)
            elif self.device:
                self.sock.sendto(data, self.device)

    def start(self):
        super().start()
        self._sender.start()

    def run(self):
        while self.running:
            with self.lock:
                up = self.upstream
            try:
                # Both ways at once: the plugin's RTCP is passed on as it comes.
                ready, _, _ = select.select([self.sock, up], [], [], 0.05)
            except (OSError, ValueError):
                continue  # the upstream socket was replaced (rebind) meanwhile
            if up in ready:
                self._pump_back()
            if self.sock not in ready:
                continue
            try:
                data, src = self.sock.recvfrom(2048)
            except socket.timeout:
                continue
            except OSError:
                return
            self.device = src
            seq = int.from_bytes(data[2:4], "big") if len(data) >= 12 else None
            first = not is_rtcp(data) and seq not in self._seen
            if not is_rtcp(data):
                self._seen.add(seq)
            if not is_rtcp(data) and self.rng.random() < self.loss:
                self.dropped += 1
                self.dropped_first += first
                continue
            if not is_rtcp(data) and self.tamper > 0 and len(data) > 12:
                self.tamper -= 1
                self.tampered += 1
                bad = bytearray(data)
                bad[12] ^= 0x5A
                self.inject(bytes(bad), from_new_port=self.tamper_from_new)
                continue
            self.passed += 1
            if self.delay > 0:
                self._hold("up", data)
            else:
                self._up(data)

    def inject(self, data, from_new_port=False):
        """Sends data to the plugin, from the upstream socket (where the
        device's packets come from) or from a stranger's fresh port."""
        if from_new_port:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(data, self.plugin)
        else:
            with self.lock:
                self.upstream.sendto(data, self.plugin)

    def last_rtp(self, back=0):
        with self.lock:
            return self.recent[-1 - back] if len(self.recent) > back else None

    def stop(self):
        self.running = False
        with self._cv:
            self._cv.notify()
        self.join()
        if self._sender.is_alive():
            self._sender.join()
        self.sock.close()
        self.upstream.close()
