#!/usr/bin/python3
"""Many WebRTC viewers in one process, for the scale benchmark.

    /usr/bin/python3 tools/bench/viewers.py --janus http://127.0.0.1:8088/janus \\
        --plugin janus.plugin.streaming --id 1 [--pin X] --count N --seconds S \\
        [--ramp-per-s R] [--json OUT|-]

or, from Python (Debian's /usr/bin/python3, which has python3-gi):

    from viewers import run_viewers
    r = run_viewers("http://127.0.0.1:8088/janus", "janus.plugin.outpost", "cam1", 100, 30)

What it is: N viewers, each a GStreamer `webrtcbin` pipeline of its own (its own ICE
agent, DTLS-SRTP session and RTCP), each with its own Janus session on the plain HTTP
REST API, the way janus.js would do it: create, attach the plugin, `watch` (id: the
Streaming plugin's mountpoint id, int or string, or janus.plugin.outpost's device id),
take the offer (Janus puts its candidates in it) from the long-poll, answer with
webrtcbin's answer once ICE gathering is complete (host candidates in the SDP,
`"trickle": false`), `start`. One thread per viewer does that and then stays in the
session's long-poll (which is what keeps the session alive). `--janus` may be given more
than once: viewers go round-robin to the servers and the result has each server's share.
Viewers start at --ramp-per-s; every HTTP request has a timeout, ICE must be connected
10 s after the answer went out, and a viewer that fails at any step is counted (with the
step and the reason) and left out; it never holds the run up.

What it measures, per viewer, from the RTP it receives (after SRTP decryption, at
webrtcbin's src pad, behind its rtpbin and jitterbuffer, which pushes in-order packets
at once; nothing is depayloaded or decoded, so any codec counts the same: AV1, H.264,
VP8): RTP packets, frames (packets with the marker bit), packets lost (sequence-number
gaps), bytes (RTP packets as received, header included), the negotiated codec, and the
times from the viewer's start to the offer, to ICE connected and to its first packet.
The src pad ends in an appsink; one thread drains every viewer's appsink each 100 ms and
counts (a Python pad probe instead costs a Python call per packet on each streaming
thread: ~1.5x the client's CPU). The window starts when every viewer has connected or
failed and every connected one has had its first packet (or 5 s passed: a new viewer
waits for DTLS, sometimes for a DTLS retransmission a second later), and lasts --seconds;
each viewer's window is timed on its own (the walk over all viewers takes a moment).
The result: `viewers_connected` (ICE connected), `viewers_receiving` (packets in the
window), failures by step and reason, and for the window, summed and per server: packets,
frames, lost, bytes; frames per viewer and fps per viewer min/median/max; then one row
per viewer. Viewers send no NACKs (webrtcbin's default), so a lost packet stays lost:
`lost` is what the server or the machine dropped, and it is the same count on every
viewer when it was lost before the server's fan-out.

Its own cost, in the result under `client`: the process's CPU (os.times(): all its
threads) per second of the window and of the set-up, and its peak RSS. On the 2-core
development machine, Streaming plugin, VP8 640x480 at ~650 kbit/s (~72 RTP packets/s
a viewer), while other tests ran on it: 20 viewers 0.23 CPU-s/s, 76 MB; 100 viewers
0.95 CPU-s/s, 200 MB (about 130 us of CPU per packet: libnice, DTLS-SRTP, rtpbin and the
jitterbuffer's thread; the counting is a few per cent of it). Threads: one Python thread per viewer
(the long-poll) plus GStreamer's own, ~10 per viewer. On a 2-core machine the client
competes with the server it measures: read the client's CPU next to the server's.
Per viewer, libnice's UPnP IGD client and ICE-TCP candidates are switched off (the first
costs sockets and SSDP traffic per viewer; Janus has ICE-TCP off by default);
RLIMIT_NOFILE is raised to its hard limit.
"""
import argparse
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstWebRTC", "1.0")
    gi.require_version("GstSdp", "1.0")
    gi.require_version("GstApp", "1.0")
    from gi.repository import Gst, GstApp, GstSdp, GstWebRTC  # noqa: F401  (GstApp: AppSink methods)
except (ImportError, ValueError) as e:  # e.g. a pyenv python without python3-gi
    Gst = None
    _GI_ERROR = e

SYSTEM_PYTHON = "/usr/bin/python3"
HTTP_TIMEOUT = 10.0  # every request but the long-poll
POLL_TIMEOUT = 45.0  # the long-poll: Janus answers within 30 s (a keepalive if nothing else)
OFFER_TIMEOUT = 15.0  # watch -> the offer's event
GATHER_TIMEOUT = 5.0
ICE_TIMEOUT = 10.0  # answer sent -> ICE connected
DRAIN_INTERVAL = 0.1
MEDIA_WAIT = 5.0  # all set up -> the window starts once every viewer has had a packet, or this
PROMISE_TIMEOUT = 5.0
NON_CODECS = {"RTX", "RED", "ULPFEC", "FLEXFEC-03", "TELEPHONE-EVENT", "CN"}


class ViewerError(Exception):
    def __init__(self, stage, reason):
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


def _tid():
    return "%016x" % random.getrandbits(64)


def _http(url, body=None, timeout=HTTP_TIMEOUT):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def _offer_codecs(sdp_text):
    """[(mline index, media, pt, encoding name, clock rate, fmtp or None)] for each m-line:
    its first real codec (not rtx/red/fec) in the offer's payload order."""
    out, sections, cur = [], [], None
    for line in sdp_text.splitlines():
        if line.startswith("m="):
            cur = {"m": line, "rtpmap": {}, "fmtp": {}}
            sections.append(cur)
        elif cur and line.startswith("a=rtpmap:"):
            pt, enc = line[9:].split(" ", 1)
            cur["rtpmap"][pt] = enc.strip()
        elif cur and line.startswith("a=fmtp:"):
            pt, params = line[7:].split(" ", 1)
            cur["fmtp"][pt] = params.strip()
    for i, s in enumerate(sections):
        parts = s["m"][2:].split()
        if len(parts) < 4 or parts[1] == "0":
            continue
        for pt in parts[3:]:
            enc = s["rtpmap"].get(pt)
            if not enc:
                continue
            name, _, rest = enc.partition("/")
            if name.upper() in NON_CODECS:
                continue
            out.append((i, parts[0], int(pt), name, int(rest.split("/")[0]), s["fmtp"].get(pt)))
            break
    return out


def _answer_ok(answer_text, codecs):
    """Each offered m-line accepted (port != 0) with its codec's payload type."""
    secs = answer_text.split("\nm=")[1:]
    for i, _media, pt, name, _clock, _fmtp in codecs:
        if i >= len(secs):
            return False
        s = secs[i]
        port = s.split(None, 2)[1] if len(s.split(None, 2)) > 1 else "0"
        if port == "0" or f"a=rtpmap:{pt} {name}/".lower() not in s.lower():
            return False
    return True


def _inject_candidates(sdp_text, cands):
    """Adds trickled candidates [(mline, 'candidate:...')] to the SDP if it has none."""
    if "a=candidate:" in sdp_text or not cands:
        return sdp_text
    lines = sdp_text.replace("\r\n", "\n").rstrip("\n").split("\n")
    out, m = [], -1

    def flush(idx):
        out.extend(f"a={c}" for ml, c in cands if ml == idx)
        if idx >= 0:
            out.append("a=end-of-candidates")

    for line in lines:
        if line.startswith("m="):
            if m >= 0:
                flush(m)
            m += 1
        out.append(line)
    if m >= 0:
        flush(m)
    return "\r\n".join(out) + "\r\n"


class Viewer:
    """One WebRTC viewer: a Janus session + handle, a webrtcbin pipeline, RTP counters."""

    def __init__(self, index, server_index, url, plugin, stream_id, pin):
        self.index = index
        self.server_index = server_index
        self.url = url.rstrip("/")
        self.plugin = plugin
        self.stream_id = stream_id
        self.pin = pin
        self.session = self.handle = None
        self.pipe = self.webrtc = None
        self._pipe_lock = threading.Lock()
        self.state = "new"  # new, setup, connected, failed
        self.stage = "create"
        self.error = None
        self.codec = None
        self.used_transceivers = False
        self.events = {}  # Janus events seen: webrtcup, media, hangup, ...
        self.stopping = False
        self.done = threading.Event()  # set-up finished (connected or failed)
        self.t_start = self.t_offer = self.t_ice = self.t_first = None
        # counters (written by the counting thread only: see drain())
        self.packets = self.frames = self.lost = self.bytes = 0
        self.last_seq = None
        self.sink = None  # the appsink the RTP ends in, drained by the counting thread
        self._cands = []
        self._ice_changed = threading.Event()
        self._pending = []  # events read by the long-poll but not consumed yet
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"viewer-{index}")

    # -- Janus HTTP ---------------------------------------------------------------------

    def _post(self, path, body):
        body["transaction"] = _tid()
        r = _http(self.url + path, body)
        if r.get("janus") == "error":
            err = r.get("error", {})
            raise ViewerError(self.stage, f"janus error {err.get('code')}: {err.get('reason')}")
        return r

    def _poll(self, timeout=POLL_TIMEOUT):
        r = _http(f"{self.url}/{self.session}?maxev=10&rid={int(time.time() * 1000)}", None, timeout)
        evs = r if isinstance(r, list) else [r]
        for ev in evs:
            kind = ev.get("janus")
            if kind in ("webrtcup", "media", "hangup", "slowlink", "detached", "timeout"):
                self.events[kind] = self.events.get(kind, 0) + 1
                if kind in ("hangup", "detached", "timeout") and self.state == "connected":
                    self.error = f"janus {kind}: {ev.get('reason', '')}".strip()
            if kind == "error":
                err = ev.get("error", {})
                raise ViewerError(self.stage, f"long-poll error {err.get('code')}: {err.get('reason')}")
        return evs

    def _wait_event(self, pred, timeout):
        end = time.monotonic() + timeout
        while True:
            for ev in self._pending:
                if pred(ev):
                    self._pending.remove(ev)
                    return ev
            left = end - time.monotonic()
            if left <= 0:
                raise ViewerError(self.stage, "timed out waiting for Janus")
            self._pending.extend(self._poll(timeout=min(POLL_TIMEOUT, left + 1)))

    def _message(self, body, jsep=None):
        msg = {"janus": "message", "body": body}
        if jsep:
            msg["jsep"] = jsep
        r = self._post(f"/{self.session}/{self.handle}", msg)
        tid = msg["transaction"]
        if r.get("janus") == "success":  # a synchronous answer
            return r.get("plugindata", {}).get("data", {}), r.get("jsep"), tid
        return None, None, tid

    # -- webrtcbin ---------------------------------------------------------------------

    def _make_pipeline(self):
        pipe = Gst.Pipeline.new(f"viewer{self.index}")
        w = Gst.ElementFactory.make("webrtcbin", None)
        w.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        w.connect("pad-added", self._on_pad)
        w.connect("on-ice-candidate", lambda _w, ml, c: self._cands.append((ml, c)))
        w.connect("notify::ice-connection-state", lambda *_: self._ice_changed.set())
        w.connect("notify::ice-gathering-state", lambda *_: self._ice_changed.set())
        pipe.add(w)
        pipe.get_bus().set_sync_handler(self._on_bus)  # nobody iterates these buses: drop, keep errors
        with self._pipe_lock:
            if self.stopping:
                raise ViewerError(self.stage, "stopped")
            self.pipe, self.webrtc = pipe, w
        if pipe.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            raise ViewerError("pipeline", "webrtcbin would not start")

    def _tune_ice(self):
        """After set-remote-description (webrtcbin has made its ICE transports) and before
        gathering: no UPnP IGD client (libnice's default: a GUPnP context, sockets and SSDP
        traffic per viewer) and no ICE-TCP candidates (Janus has ICE-TCP off by default).
        The NiceAgent is taken from a nicesrc: webrtcbin's own "ice-agent" property hands
        Python its only (floating) reference in GStreamer 1.22, which then frees it."""
        it = self.webrtc.iterate_recurse()
        while True:
            res, el = it.next()
            if res != Gst.IteratorResult.OK:
                return
            f = el.get_factory()
            if f is not None and f.get_name() in ("nicesrc", "nicesink"):
                agent = el.get_property("agent")
                if agent is not None:
                    for prop, value in (("upnp", False), ("ice-tcp", False)):
                        if agent.find_property(prop):
                            agent.set_property(prop, value)
                    return

    def _on_bus(self, _bus, msg):
        if msg.type == Gst.MessageType.ERROR and self.error is None:
            err, _dbg = msg.parse_error()
            self.error = f"gstreamer: {err.message}"
        return Gst.BusSyncReply.DROP

    def _drop_pipeline(self):
        with self._pipe_lock:
            pipe, self.pipe, self.webrtc = self.pipe, None, None
        if pipe is not None:
            pipe.set_state(Gst.State.NULL)
            pipe.get_bus().set_sync_handler(None)

    def _promise(self, signal, *args):
        done = threading.Event()
        p = Gst.Promise.new_with_change_func(lambda _p: done.set())
        self.webrtc.emit(signal, *args, p)
        if not done.wait(PROMISE_TIMEOUT):
            raise ViewerError(self.stage, f"{signal} timed out")
        reply = p.get_reply()
        if reply is not None and reply.has_field("error"):
            raise ViewerError(self.stage, f"{signal}: {reply.get_value('error')}")
        return reply

    def _wait_ice(self, prop, ok, bad, timeout, what):
        end = time.monotonic() + timeout
        while True:
            self._ice_changed.clear()
            state = self.webrtc.get_property(prop)
            if state in ok:
                return
            if state in bad:
                raise ViewerError(self.stage, f"{what}: {state.value_nick}")
            left = end - time.monotonic()
            if left <= 0:
                raise ViewerError(self.stage, f"{what}: timed out in state {state.value_nick}")
            self._ice_changed.wait(min(left, 0.25))

    def _negotiate(self, offer_sdp, codecs, with_transceivers):
        """Remote offer -> local answer SDP with candidates, on a fresh webrtcbin."""
        self._make_pipeline()
        if with_transceivers:
            # caps from the offer's rtpmap, so webrtcbin answers a codec it has no caps for
            for _i, media, pt, name, clock, _fmtp in codecs:
                caps = Gst.Caps.from_string(
                    f"application/x-rtp,media={media},encoding-name={name.upper()},"
                    f"payload={pt},clock-rate={clock}")
                self.webrtc.emit("add-transceiver",
                                 GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
        ok, msg = GstSdp.SDPMessage.new_from_text(offer_sdp)
        if ok != GstSdp.SDPResult.OK:
            raise ViewerError(self.stage, "cannot parse the offer")
        offer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, msg)
        self._promise("set-remote-description", offer)
        self._tune_ice()
        reply = self._promise("create-answer", None)
        answer = reply.get_value("answer") if reply is not None else None
        if answer is None or not _answer_ok(answer.sdp.as_text(), codecs):
            return None
        self._promise("set-local-description", answer)
        S = GstWebRTC.WebRTCICEGatheringState
        self._wait_ice("ice-gathering-state", (S.COMPLETE,), (), GATHER_TIMEOUT, "ICE gathering")
        local = self.webrtc.get_property("local-description")
        return _inject_candidates(local.sdp.as_text(), list(self._cands))

    # -- counting --------------------------------------------------------------------

    def _on_pad(self, _w, pad):
        """webrtcbin's streaming thread, on the first RTP packet of a stream: an appsink."""
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        if self.t_first is None:
            self.t_first = time.monotonic()
        caps = pad.get_current_caps()
        if caps and caps.get_size():
            self.codec = caps.get_structure(0).get_string("encoding-name")
        sink = Gst.ElementFactory.make("appsink", None)
        sink.set_property("sync", False)
        sink.set_property("async", False)
        sink.set_property("enable-last-sample", False)
        sink.set_property("max-buffers", 0)  # drained every DRAIN_INTERVAL: a few packets
        pipe = self.pipe
        if pipe is None:
            return
        pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        self.sink = sink

    def drain(self):
        """The counting thread: every RTP packet queued in the appsink since the last call.
        (A Python pad probe would cost a Python call on every streaming thread per packet,
        with a GIL hand-over each time: ~1.5x the client's CPU; this is ~1.03x.)"""
        sink = self.sink
        if sink is None:
            return
        packets, frames, lost, nbytes, last = self.packets, self.frames, self.lost, self.bytes, self.last_seq
        while True:
            sample = sink.try_pull_sample(0)
            if sample is None:
                break
            buf = sample.get_buffer()
            size = buf.get_size()
            if size < 12:
                continue
            head = buf.extract_dup(0, 4)
            seq = (head[2] << 8) | head[3]
            if last is not None:
                d = (seq - last) & 0xFFFF
                if d == 0 or d >= 0x8000:
                    continue  # a duplicate or a late one: not counted again
                lost += d - 1
            last = seq
            packets += 1
            nbytes += size
            if head[1] & 0x80:
                frames += 1
        self.packets, self.frames, self.lost, self.bytes, self.last_seq = packets, frames, lost, nbytes, last

    def snapshot(self):
        """Drains, then (packets, frames, lost, bytes, when): each viewer's window is its own
        (a walk over 200 viewers under load takes a while)."""
        self.drain()
        return (self.packets, self.frames, self.lost, self.bytes, time.monotonic())

    # -- the viewer's thread ----------------------------------------------------------

    def _setup(self):
        self.t_start = time.monotonic()
        self.state = "setup"
        self.stage = "create"
        self.session = self._post("", {"janus": "create"})["data"]["id"]
        self.stage = "attach"
        self.handle = self._post(f"/{self.session}", {"janus": "attach", "plugin": self.plugin})[
            "data"]["id"]
        self.stage = "watch"
        body = {"request": "watch", "id": self.stream_id}
        if self.pin is not None:
            body["pin"] = self.pin
        data, jsep, tid = self._message(body)
        if data is None:
            ev = self._wait_event(lambda e: e.get("transaction") == tid and e.get("janus") == "event"
                                  or e.get("janus") in ("hangup", "detached"), OFFER_TIMEOUT)
            if ev.get("janus") != "event":
                raise ViewerError(self.stage, f"janus {ev.get('janus')}: {ev.get('reason', '')}")
            data, jsep = ev.get("plugindata", {}).get("data", {}), ev.get("jsep")
        if data.get("error") or data.get("error_code"):
            raise ViewerError(self.stage, f"plugin error {data.get('error_code')}: {data.get('error')}")
        if not jsep or jsep.get("type") != "offer":
            raise ViewerError(self.stage, f"no offer in the answer to watch: {data}")
        self.t_offer = time.monotonic()
        self.stage = "answer"
        codecs = _offer_codecs(jsep["sdp"])
        if not codecs:
            raise ViewerError(self.stage, "no codec in the offer")
        answer = self._negotiate(jsep["sdp"], codecs, False)
        if answer is None:  # webrtcbin had no caps for it: say what to answer
            self._drop_pipeline()
            self._cands = []
            self.used_transceivers = True
            answer = self._negotiate(jsep["sdp"], codecs, True)
            if answer is None:
                raise ViewerError(self.stage, f"webrtcbin would not answer {codecs}")
        self.stage = "start"
        data, _jsep, _tid2 = self._message({"request": "start"},
                                           {"type": "answer", "sdp": answer, "trickle": False})
        if data and (data.get("error") or data.get("error_code")):
            raise ViewerError(self.stage, f"plugin error {data.get('error_code')}: {data.get('error')}")
        self.stage = "ice"
        S = GstWebRTC.WebRTCICEConnectionState
        self._wait_ice("ice-connection-state", (S.CONNECTED, S.COMPLETED), (S.FAILED, S.CLOSED),
                       ICE_TIMEOUT, "ICE")
        self.t_ice = time.monotonic()
        self.state = "connected"
        self.stage = "media"

    def _run(self):
        try:
            self._setup()
        except Exception as e:  # noqa: BLE001  every failure is counted, none ends the run
            self.state = "failed"
            if isinstance(e, ViewerError):
                self.stage, self.error = e.stage, e.reason
            elif isinstance(e, urllib.error.HTTPError):
                self.error = f"HTTP {e.code}"
            elif isinstance(e, (urllib.error.URLError, OSError)):
                self.error = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            else:
                self.error = f"{type(e).__name__}: {e}"
        finally:
            self.done.set()
        if self.state != "connected":
            self._drop_pipeline()
            return
        # the long-poll keeps the session alive (Janus: 60 s without one and it is gone)
        fails = 0
        while not self.stopping:
            try:
                self._pending = []
                self._poll()
                fails = 0
            except Exception as e:  # noqa: BLE001
                if self.stopping:
                    break
                fails += 1
                if fails >= 3:
                    self.error = f"long-poll: {e}"
                    break
                time.sleep(1)

    def stop(self):
        self.stopping = True
        if self.session is not None:
            try:
                _http(f"{self.url}/{self.session}", {"janus": "destroy", "transaction": _tid()},
                      timeout=5)
            except Exception:  # noqa: BLE001  best effort: the session times out anyway
                pass

    def ms(self, t):
        return None if t is None or self.t_start is None else round((t - self.t_start) * 1000, 1)


def _cpu():
    t = os.times()
    return t.user + t.system


def _raise_nofile(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, 64 * count + 1024)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _summary(values):
    if not values:
        return {"min": None, "median": None, "max": None}
    med = statistics.median(values)
    return {"min": min(values), "median": round(med, 3) if isinstance(med, float) else med,
            "max": max(values)}


def run_viewers(janus_url, plugin, stream_id, count, seconds, ramp_per_s=20, pin=None,
                log=None, on_window=None, settle_s=0.0):
    """Runs `count` viewers of `stream_id` on `plugin` for `seconds` once all are up.

    janus_url: one URL (str) or several (list): viewers are split round-robin.
    on_window: called with "start" and "end" at the counting window's edges (a
    benchmark reads the servers' CPU there). settle_s: seconds between the last
    first packet and the window (a join's catch-up from a GOP cache).
    Returns a dict (JSON-serialisable): totals over the counting window (viewers_connected,
    packets, frames, lost, bytes, frames per viewer min/median), per server and per viewer.
    """
    if Gst is None:
        raise RuntimeError(f"viewers.py needs python3-gi with GStreamer's typelibs "
                           f"(run it with {SYSTEM_PYTHON}): {_GI_ERROR}")
    log = log or (lambda *a: None)
    urls = [janus_url] if isinstance(janus_url, str) else list(janus_url)
    Gst.init(None)
    if Gst.ElementFactory.find("webrtcbin") is None or Gst.ElementFactory.find("nicesrc") is None:
        raise RuntimeError("webrtcbin or nicesrc missing: install gstreamer1.0-plugins-bad "
                           "and gstreamer1.0-nice")
    Gst.ElementFactory.make("webrtcbin", None)  # load the plugins once, before the threads
    nofile = _raise_nofile(count)
    old_stack = threading.stack_size(512 * 1024)  # our threads (not GStreamer's) need little

    viewers = [Viewer(i, i % len(urls), urls[i % len(urls)], plugin, stream_id, pin)
               for i in range(count)]
    # one thread counts for all: it drains every viewer's appsink each DRAIN_INTERVAL
    drain_lock, draining = threading.Lock(), threading.Event()

    def drain_all():
        with drain_lock:
            for v in viewers:
                v.drain()

    def drainer():
        while not draining.wait(DRAIN_INTERVAL):
            drain_all()

    counter = threading.Thread(target=drainer, daemon=True, name="viewers-count")
    counter.start()
    cpu0, t0 = _cpu(), time.monotonic()
    ramp = max(ramp_per_s, 0.001)
    for v in viewers:
        delay = t0 + v.index / ramp - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        v.thread.start()
    threading.stack_size(old_stack)
    # every viewer ends its set-up by itself (each step has a timeout); this is a backstop
    limit = time.monotonic() + 2 * HTTP_TIMEOUT + OFFER_TIMEOUT + 2 * GATHER_TIMEOUT + ICE_TIMEOUT + 10
    for v in viewers:
        v.done.wait(max(0.0, limit - time.monotonic()))
    state = {}
    for v in viewers:
        if v.done.is_set():
            state[v.index] = v.state
        else:  # its thread may still finish: this run has counted it as failed
            state[v.index], v.error = "failed", f"set-up still in stage {v.stage} at the deadline"
    connected = [v for v in viewers if state[v.index] == "connected"]
    # a new viewer's first packet can wait for DTLS (and a keyframe): count from steady state
    media_end = time.monotonic() + MEDIA_WAIT
    while time.monotonic() < media_end and any(v.t_first is None for v in connected):
        time.sleep(0.05)
    t_up, cpu_up = time.monotonic(), _cpu()
    log(f"viewers: {len(connected)}/{count} connected in {t_up - t0:.1f} s; counting {seconds} s")
    time.sleep(settle_s)

    with drain_lock:
        if on_window:
            on_window("start")
        w0, c0 = time.monotonic(), _cpu()
        start = {v.index: v.snapshot() for v in connected}
    if connected:
        time.sleep(seconds)
    with drain_lock:
        end = {v.index: v.snapshot() for v in connected}
        w1, c1 = time.monotonic(), _cpu()
        if on_window:
            on_window("end")
    draining.set()
    counter.join(2)
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = None

    # teardown: sessions first (Janus stops sending), then the pipelines
    stoppers = [threading.Thread(target=v.stop, daemon=True) for v in viewers]
    for i, th in enumerate(stoppers):
        th.start()
        if i % 20 == 19:
            time.sleep(0.05)
    for th in stoppers:
        th.join(6)
    for v in viewers:
        v._drop_pipeline()

    window = w1 - w0
    per = []
    for v in viewers:
        d = [b - a for a, b in zip(start[v.index], end[v.index])] if v.index in start else [0] * 5
        per.append({
            "viewer": v.index, "server": v.server_index, "state": state[v.index],
            "stage": None if state[v.index] == "connected" else v.stage, "error": v.error,
            "codec": v.codec, "answered_with_transceiver": v.used_transceivers,
            "offer_ms": v.ms(v.t_offer), "ice_connected_ms": v.ms(v.t_ice),
            "first_packet_ms": v.ms(v.t_first),
            "packets": d[0], "frames": d[1], "lost": d[2], "bytes": d[3],
            "window_s": round(d[4], 3), "fps": round(d[1] / d[4], 2) if d[4] > 0 else None,
            "kbit_per_s": round(d[3] * 8 / d[4] / 1000, 1) if d[4] > 0 else None,
            "janus_events": dict(v.events),
        })
    ok = [p for p in per if p["state"] == "connected"]

    def totals(rows):
        return {k: sum(p[k] for p in rows) for k in ("packets", "frames", "lost", "bytes")}

    failures = {}
    for p in per:
        if p["state"] != "connected":
            key = f"{p['stage']}: {p['error']}"
            failures[key] = failures.get(key, 0) + 1
    codecs = {}
    for p in ok:
        codecs[p["codec"] or "none"] = codecs.get(p["codec"] or "none", 0) + 1
    frames = [p["frames"] for p in ok]
    fps = _summary([p["fps"] for p in ok if p["fps"] is not None])
    lost = sum(p["lost"] for p in ok)
    servers = []
    for si, u in enumerate(urls):
        rows = [p for p in per if p["server"] == si]
        good = [p for p in rows if p["state"] == "connected"]
        servers.append({"url": u, "viewers": len(rows), "viewers_connected": len(good),
                        **totals(good),
                        "frames_per_viewer": _summary([p["frames"] for p in good])})
    result = {
        "janus": urls, "plugin": plugin, "id": stream_id, "count": count,
        "seconds": seconds, "ramp_per_s": ramp_per_s,
        "viewers_connected": len(ok), "viewers_failed": count - len(ok),
        "viewers_receiving": sum(1 for p in ok if p["packets"] > 0),
        "failures": failures, "codecs": codecs,
        "window_s": round(window, 3), "setup_s": round(t_up - t0, 3),
        **totals(ok),
        "frames_per_viewer": _summary(frames),
        "fps_per_viewer": fps,
        "fps_per_viewer_median": fps["median"],
        "kbit_per_s_per_viewer_median":
            _summary([p["kbit_per_s"] for p in ok if p["kbit_per_s"] is not None])["median"],
        "loss_ratio": round(lost / max(1, lost + sum(p["packets"] for p in ok)), 6),
        "ice_connected_ms": _summary([p["ice_connected_ms"] for p in ok]),
        "first_packet_ms": _summary([p["first_packet_ms"] for p in ok if p["first_packet_ms"] is not None]),
        "client": {
            "cpu_s_per_s_window": round((c1 - c0) / window, 3),
            "cpu_s_per_s_setup": round((cpu_up - cpu0) / max(1e-3, t_up - t0), 3),
            "max_rss_mb": round(rss_kb / 1024, 1), "open_fds": fds, "nofile_limit": nofile,
            "threads_in_window": threading.active_count(),
        },
        "servers": servers,
        "per_viewer": per,
    }
    return result


def _stream_id(s, force_string):
    if force_string:
        return s
    try:
        return int(s)
    except ValueError:
        return s


def main(argv=None):
    if Gst is None and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON) \
            and os.path.exists(SYSTEM_PYTHON):
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON, os.path.abspath(__file__)] + sys.argv[1:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--janus", action="append", required=True,
                    help="Janus HTTP API URL, e.g. http://127.0.0.1:8088/janus; repeat for several "
                         "servers (viewers round-robin)")
    ap.add_argument("--plugin", default="janus.plugin.streaming")
    ap.add_argument("--id", required=True, help="mountpoint / device id (an int if it looks like one)")
    ap.add_argument("--string-id", action="store_true", help="send --id as a string even if numeric")
    ap.add_argument("--pin")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True, help="counting window, once all are up")
    ap.add_argument("--ramp-per-s", type=float, default=20, help="viewers started per second")
    ap.add_argument("--json", help="write the full result here ('-': stdout)")
    ap.add_argument("--per-viewer", action="store_true", help="print a line per viewer")
    a = ap.parse_args(argv)

    def log(*x):
        print(*x, file=sys.stderr, flush=True)

    r = run_viewers(a.janus if len(a.janus) > 1 else a.janus[0], a.plugin,
                    _stream_id(a.id, a.string_id), a.count, a.seconds, a.ramp_per_s, a.pin, log)
    if a.json == "-":
        json.dump(r, sys.stdout, indent=1)
        print()
    elif a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    fv = r["frames_per_viewer"]
    log(f"connected {r['viewers_connected']}/{r['count']} (receiving {r['viewers_receiving']}), "
        f"codecs {r['codecs']}, window {r['window_s']} s: packets {r['packets']} frames {r['frames']} "
        f"lost {r['lost']} bytes {r['bytes']}; frames/viewer min {fv['min']} median {fv['median']} "
        f"max {fv['max']} (fps min {r['fps_per_viewer']['min']} median {r['fps_per_viewer']['median']}); "
        f"ICE connected median "
        f"{r['ice_connected_ms']['median']} ms; client CPU {r['client']['cpu_s_per_s_window']} s/s "
        f"(set-up {r['client']['cpu_s_per_s_setup']}), max RSS {r['client']['max_rss_mb']} MB")
    if len(r["servers"]) > 1:
        for s in r["servers"]:
            log(f"  {s['url']}: {s['viewers_connected']}/{s['viewers']} connected, frames {s['frames']}, "
                f"lost {s['lost']}, frames/viewer median {s['frames_per_viewer']['median']}")
    for k, n in r["failures"].items():
        log(f"  failed x{n}: {k}")
    if a.per_viewer:
        for p in r["per_viewer"]:
            log(f"  #{p['viewer']} s{p['server']} {p['state']} {p['codec']} ice {p['ice_connected_ms']} ms "
                f"first {p['first_packet_ms']} ms: {p['packets']} pk {p['frames']} fr {p['lost']} lost "
                f"{p['error'] or ''}")
    return 0 if r["viewers_connected"] == r["count"] else 1


if __name__ == "__main__":
    sys.exit(main())
