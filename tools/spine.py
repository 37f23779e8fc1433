"""The whole spine on this machine: Janus (private folder, never /etc/janus) with
janus.plugin.outpost, a static server for web/ (janus.js and adapter.js come
from Debian's /usr/share/javascript), and device kernels (test pattern ->
encoder -> uplink) over loopback. tools/demo and the browser tests use it.

As a program it is the browser tests' fixture, driven over stdin/stdout with
one JSON object per line:
  python3 tools/spine.py --devices cam1,cam2 [--encoder encoder-aom[,one per device]] [--bitrate 500]
                         [--no-kernels] [--y4m DEVICE=FILE.y4m] [--pin DEVICE=PIN]
                         [--mode always|on-demand|manual]
  -> {"ready": true, "url": ..., "janus": ..., "admin": ..., "admin_secret": ...,
      "secret": ..., "devices": [...]}
  <- {"cmd": "kill", "device": "cam1", "module": "encoder"}   kill -9 of a module
  <- {"cmd": "stop" | "start", "device": "cam1"}              the device's kernel
  <- {"cmd": "status", "device": "cam1"}                      the plugin's view
  <- {"cmd": "modules", "device": "cam1"}                     the kernel's table
  --edges N also starts N edge Janus servers (the stock Streaming plugin, a
  mountpoint per device: tools/edge), listed in "edges" of the ready line:
  <- {"cmd": "forward", "device": "cam1", "edge": 0}          the origin forwards to it
  <- {"cmd": "unforward", "forward_id": 1}
  <- {"cmd": "edge_info", "device": "cam1", "edge": 0}        its mountpoint's info
  <- {"cmd": "quit"}
  -> {"ok": true, ...} or {"ok": false, "error": "..."} for each."""
import argparse
import http.server
import json
import os
import posixpath
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
WEB = os.path.join(ROOT, "web")
SHARED_JS = "/usr/share/javascript"
PKG = "janus.plugin.outpost"
os.environ.setdefault("OUTPOST_BUILD", os.path.join(ROOT, "build"))
sys.path.insert(0, os.path.join(ROOT, "tests", "janus"))
sys.path.insert(0, os.path.join(ROOT, "tests", "kernel"))
from harness import BIN, BUILD, Kernel, module  # noqa: E402
from janus import STREAMING_SO, Janus, free_port  # noqa: E402

import edge as edge_tool  # noqa: E402 - tools/edge.py, beside this file

MIME = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
        ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
        ".map": "application/json", ".png": "image/png", ".svg": "image/svg+xml"}


class _Handler(http.server.BaseHTTPRequestHandler):
    """web/ at /, /usr/share/javascript at /js/; nothing else, no listings."""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        path = posixpath.normpath(urllib.parse.urlsplit(self.path).path)
        if path in ("/", "."):
            path = "/index.html"
        base, rel = (SHARED_JS, path[4:]) if path.startswith("/js/") else (WEB, path[1:])
        full = os.path.realpath(os.path.join(base, rel))
        if not full.startswith(os.path.realpath(base) + os.sep) or not os.path.isfile(full):
            self.send_error(404)
            return
        with open(full, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", MIME.get(os.path.splitext(full)[1],
                                                  "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class WebServer:
    """The page's static server on 127.0.0.1 (a thread of this process)."""

    def __init__(self, port=0, host="127.0.0.1"):
        self.httpd = http.server.ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def keygen(path=None):
    """A CURVE key pair (public, secret); kept in `path` when given (made once)."""
    if path and os.path.exists(path):
        text = open(path).read()
    else:
        text = subprocess.run([os.path.join(BIN, "outpostctl"), "keygen"], capture_output=True,
                              text=True, check=True).stdout
        if path:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(text)
    kv = dict(line.split(" = ", 1) for line in text.strip().splitlines() if " = " in line)
    return kv["public_key"].rstrip(";").strip('"'), kv["secret_key"].rstrip(";").strip('"')


def stop_recording(admin, secret, device, timeout=5):
    """Stops a device's recording through admin(request) and waits until the
    plugin has closed the file (it lets packets still asked for arrive first,
    off Janus's threads). Returns {"file", "units"} of the closed recording."""
    admin({"request": "record", "secret": secret, "id": device, "action": "stop"})
    deadline = time.monotonic() + timeout
    while True:
        d = admin({"request": "status", "secret": secret, "id": device})["device"]
        if d["recording"] is None and d["last_recording"]:
            return d["last_recording"]
        if time.monotonic() > deadline:
            raise AssertionError(f"recording of {device} not closed within {timeout} s: {d}")
        time.sleep(0.05)


def plugin_config(control_port, ingest_port, server_secret_key, operator_secret, recordings,
                  devices, ip="127.0.0.1", **general):
    """janus.plugin.outpost.jcfg (on loopback, or on `ip`: the link lab's server
    address): devices is {id: (public key, mode)} or {id: (public key, mode,
    {key: value, ...})} for more keys (pin, is_private); general adds keys to
    the general section (e.g. ingest_public_port)."""
    def value(v):
        return ("true" if v else "false") if isinstance(v, bool) else (
            str(v) if isinstance(v, int) else json.dumps(str(v)))
    extra = "".join(f"  {k} = {value(v)}\n" for k, v in general.items())
    cfg = (f'general: {{\n  control = "tcp://{ip}:{control_port}"\n'
           f'  ingest_ip = "{ip}"\n  ingest_port = {ingest_port}\n'
           f'  server_secret_key = "{server_secret_key}"\n'
           f'  operator_secret = "{operator_secret}"\n  recordings = "{recordings}"\n{extra}}}\n')
    for d, spec in devices.items():
        public_key, mode = spec[:2]
        more = "".join(f"  {k} = {value(v)}\n" for k, v in (spec[2] if len(spec) > 2 else {}).items())
        cfg += (f'{d}: {{\n  public_key = "{public_key}"\n  description = "camera {d}"\n'
                f'  mode = "{mode}"\n{more}}}\n')
    return cfg


class Spine:
    """Janus + plugin configured for `devices` (ids), the web server, and (for
    tests) one device kernel per id. keys_dir keeps the keys across runs."""

    def __init__(self, devices, secret="operator-secret", keys_dir=None, control_port=None,
                 web_port=0, name="spine", recordings=None, mode="always", pins=None,
                 general=None, latency=None):
        self.web = WebServer(web_port)  # first: a taken port fails before anything is made
        self.secret = secret
        self.devices = list(devices)
        self.server_keys = keygen(keys_dir and os.path.join(keys_dir, "server.keys"))
        self.device_keys = {d: keygen(keys_dir and os.path.join(keys_dir, f"{d}.keys"))
                            for d in self.devices}
        self.control_port = control_port or free_port()
        self.ingest_port = free_port(socket.SOCK_DGRAM)
        self.recordings = recordings or tempfile.mkdtemp(prefix="outpost-rec-", dir="/tmp")
        cfg = plugin_config(self.control_port, self.ingest_port, self.server_keys[1], secret,
                            self.recordings,
                            {d: (self.device_keys[d][0], mode, self._device_keys(d, pins, latency))
                             for d in self.devices}, **(general or {}))
        self.janus = Janus({PKG: os.path.join(BUILD, "janus", "libjanus_outpost.so")},
                           {PKG: cfg}, name=name)
        self.kernels = {}

    @staticmethod
    def _device_keys(d, pins, latency):
        """A device's optional jcfg keys: its pin, its latency ("auto" / "low" / "smooth")."""
        keys = {}
        if d in (pins or {}):
            keys["pin"] = pins[d]
        if d in (latency or {}):
            keys["latency"] = latency[d]
        return keys

    @property
    def url(self):
        return (f"http://127.0.0.1:{self.web.port}/?janus="
                f"{urllib.parse.quote(self.janus.url, safe='')}")

    def start(self):
        self.janus.start()
        self.web.start()
        return self

    def uplink_settings(self, device):
        pub, sec = self.device_keys[device]
        return dict(server=f"tcp://127.0.0.1:{self.control_port}", server_key=self.server_keys[0],
                    public_key=pub, secret_key=sec, device=device)

    def kernel(self, device, encoder="encoder-aom", bitrate=500, width=640, height=480, fps=30,
               y4m=None, profile=None, **encoder_settings):
        """A device kernel (not started): test pattern (or a y4m file, which has no
        stamp: a camera, as far as the page can tell) -> encoder -> uplink.
        profile: device.profile; "lan" leaves the frame rate and the bitrate to
        it (60 fps, 20000 kbit/s)."""
        rate = {} if profile == "lan" else {"fps": fps}
        cap = (module("capture", "capture-y4m", file=y4m) if y4m else
               module("capture", "capture-testsrc", width=width, height=height, **rate))
        if profile != "lan":
            encoder_settings["bitrate"] = bitrate
        k = Kernel([cap,
                    module("encoder", encoder, **rate, **encoder_settings),
                    module("uplink", "uplink", **self.uplink_settings(device))], name=device,
                   profile=profile)
        self.kernels[device] = k
        return k

    def admin(self, request):
        return self.janus.admin(request, plugin=PKG)

    def status(self, device):
        return self.admin({"request": "status", "secret": self.secret, "id": device})["device"]

    def viewer_packets(self, seconds):
        """What Janus sends every viewer (each handle of the plugin with a
        PeerConnection) for `seconds`, as Janus's own packet capture
        (Admin API start_pcap: the RTP before SRTP) sees it: per handle, the
        number of RTP packets and, for every one-byte header extension id, the
        values it carried {id: {hex: count}}."""
        raw = self.janus.admin_raw
        folder = tempfile.mkdtemp(prefix="outpost-pcap-", dir="/tmp")
        handles = []
        try:
            for s in raw({"janus": "list_sessions"}).get("sessions", []):
                for h in raw({"janus": "list_handles"}, path=f"/{s}").get("handles", []):
                    info = raw({"janus": "handle_info"}, path=f"/{s}/{h}").get("info", {})
                    if info.get("plugin") == PKG and info.get("flags", {}).get("ready"):
                        handles.append((s, h, info))
            for s, h, _ in handles:
                r = raw({"janus": "start_pcap", "folder": folder, "filename": f"{h}.pcap"},
                        path=f"/{s}/{h}")
                assert r.get("janus") == "success", r
            time.sleep(seconds)
            out = []
            for s, h, info in handles:
                raw({"janus": "stop_pcap"}, path=f"/{s}/{h}")
                out.append(dict(handle=h, **_rtp_extensions(os.path.join(folder, f"{h}.pcap"))))
            return out
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def stop(self):
        for k in self.kernels.values():
            k.stop()
        self.web.stop()
        self.janus.stop()

    def cleanup(self):
        for k in self.kernels.values():
            k.cleanup()
        self.janus.cleanup()
        shutil.rmtree(self.recordings, ignore_errors=True)


def _rtp_extensions(pcap):
    """Janus's pcap of a handle (Ethernet, IPv4, UDP with port 2000 for what it
    sent): the RTP packets sent and the one-byte header extensions in them."""
    data = open(pcap, "rb").read()
    at, packets, ext = 24, 0, {}
    while at + 16 <= len(data):
        n = int.from_bytes(data[at + 8:at + 12], "little")
        frame = data[at + 16:at + 16 + n]
        at += 16 + n
        udp, rtp = frame[34:42], frame[42:]
        if len(rtp) < 12 or int.from_bytes(udp[:2], "big") != 2000 or rtp[0] >> 6 != 2 \
                or 192 <= rtp[1] <= 223:  # not RTP Janus sent (RTCP: PT 192-223 with M)
            continue
        packets += 1
        if not rtp[0] & 0x10:
            continue
        x = 12 + 4 * (rtp[0] & 0x0F)
        if rtp[x:x + 2] != b"\xbe\xde":
            continue
        end, i = x + 4 + 4 * int.from_bytes(rtp[x + 2:x + 4], "big"), x + 4
        while i < end and i < len(rtp):
            if rtp[i] == 0:  # padding
                i += 1
                continue
            eid, ln = rtp[i] >> 4, (rtp[i] & 0x0F) + 1
            v = rtp[i + 1:i + 1 + ln].hex()
            ext.setdefault(eid, {})[v] = ext.setdefault(eid, {}).get(v, 0) + 1
            i += 1 + ln
    return {"packets": packets, "extensions": ext}


class Edge:
    """An edge Janus: the stock Streaming plugin with a mountpoint for each
    device (tools/edge's jcfg, a fresh SRTP key each), and the origin's
    forward request for each."""

    def __init__(self, devices, codecs, name="edge"):
        self.requests = {}
        blocks = []
        for d in devices:
            port = free_port(socket.SOCK_DGRAM)
            while True:  # the mountpoint's RTCP port is port + 1: both free
                rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    rtcp.bind(("127.0.0.1", port + 1))
                    break
                except OSError:
                    port = free_port(socket.SOCK_DGRAM)
                finally:
                    rtcp.close()
            key = edge_tool.new_key()
            blocks.append(edge_tool.mountpoint(d, codecs[d], port, key))
            self.requests[d] = edge_tool.forward_request(d, codecs[d], "127.0.0.1", port, key)
        self.janus = Janus({"janus.plugin.streaming": STREAMING_SO},
                           {"janus.plugin.streaming": edge_tool.streaming_jcfg(blocks)}, name=name)

    def info(self, device):
        return self.janus.admin({"request": "info", "id": device},
                                plugin="janus.plugin.streaming")["info"]


CODEC_OF = {"encoder-x264": "h264", "encoder-x265": "h265"}  # else AV1


def _serve(args):
    pins = dict(a.split("=", 1) for a in args.pin)
    latency = dict(a.split("=", 1) for a in args.latency)
    spine = Spine(args.devices.split(","), secret=args.secret, mode=args.mode, pins=pins,
                  latency=latency).start()
    encoders = args.encoder.split(",")  # one for all, or one per device in order
    y4m = dict(a.split("=", 1) for a in args.y4m)
    kernels = {} if args.no_kernels else {
        d: spine.kernel(d, encoders[i] if len(encoders) > 1 else encoders[0], args.bitrate,
                        y4m=y4m.get(d))
        for i, d in enumerate(spine.devices)}
    for k in kernels.values():
        k.start()
    codecs = {d: CODEC_OF.get(encoders[i] if len(encoders) > 1 else encoders[0], "av1")
              for i, d in enumerate(spine.devices)}
    edges = [Edge(spine.devices, codecs, name=f"edge{i + 1}") for i in range(args.edges)]
    for e in edges:
        e.janus.start()

    def out(obj):
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    out({"ready": True, "url": spine.url, "janus": spine.janus.url, "admin": spine.janus.admin_url,
         "admin_secret": spine.janus.admin_secret, "secret": spine.secret,
         "devices": spine.devices, "janus_log": spine.janus.log_path,
         "kernel_logs": {d: k.log_path for d, k in kernels.items()},
         "edges": [e.janus.url for e in edges], "edge_logs": [e.janus.log_path for e in edges]})
    try:
        for line in sys.stdin:
            try:
                req = json.loads(line)
                cmd, dev = req.get("cmd"), req.get("device")
                if cmd == "quit":
                    out({"ok": True})
                    break
                if cmd == "viewer_packets":
                    out({"ok": True, "viewers": spine.viewer_packets(req.get("seconds", 2))})
                    continue
                if cmd == "forward":
                    r = spine.admin(dict(edges[req["edge"]].requests[dev], secret=spine.secret))
                    out({"ok": True, "forward": r["forward"]})
                    continue
                if cmd in ("unforward", "list_forwards"):
                    r = spine.admin({k: v for k, v in req.items() if k != "cmd"} |
                                    {"request": cmd, "secret": spine.secret})
                    out({"ok": True, **r})
                    continue
                if cmd == "edge_info":
                    out({"ok": True, "info": edges[req["edge"]].info(dev)})
                    continue
                k = kernels[dev]
                if cmd == "kill":
                    pid = k.mod(req["module"])["pid"]
                    os.kill(pid, signal.SIGKILL)
                    out({"ok": True, "pid": pid})
                elif cmd == "stop":
                    k.stop()
                    out({"ok": True})
                elif cmd == "start":
                    k.start()
                    out({"ok": True})
                elif cmd == "status":
                    out({"ok": True, "device": spine.status(dev)})
                elif cmd == "modules":
                    out({"ok": True, "modules": k.status()["modules"]})
                else:
                    out({"ok": False, "error": f"unknown command {cmd!r}"})
            except Exception as e:  # noqa: BLE001 - reported to the driver, which fails
                out({"ok": False, "error": f"{type(e).__name__}: {e}"})
    finally:
        for e in edges:
            e.janus.stop()
        spine.stop()
        try:
            for k in kernels.values():
                k.check_clean_log()
        finally:
            for e in edges:
                e.janus.cleanup()
            spine.cleanup()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", default="cam1")
    ap.add_argument("--encoder", default="encoder-aom")  # the device default
    ap.add_argument("--bitrate", type=int, default=500)
    ap.add_argument("--secret", default="operator-secret-for-tests")
    ap.add_argument("--no-kernels", action="store_true", help="Janus and the page only")
    ap.add_argument("--pin", action="append", default=[], metavar="DEVICE=PIN",
                    help="viewers need that pin to watch that device")
    ap.add_argument("--mode", default="always", choices=["always", "on-demand", "manual"])
    ap.add_argument("--latency", action="append", default=[], metavar="DEVICE=SETTING",
                    help="that device's latency in the jcfg: auto, low or smooth")
    ap.add_argument("--edges", type=int, default=0,
                    help="edge Janus servers (the Streaming plugin) to start beside it")
    ap.add_argument("--y4m", action="append", default=[], metavar="DEVICE=FILE",
                    help="that device captures a y4m file (no stamp) instead of the pattern")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    _serve(ap.parse_args())
