"""The spine across the link lab: Janus with janus.plugin.outpost in the
server namespace (reached by the test over the management pair), device
kernels in the device namespace, the carrier in between (tests/link/lab.py).
Used by the link tests and the link benchmarks."""
import contextlib
import os
import shutil
import socket
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "kernel"))
sys.path.insert(0, os.path.join(ROOT, "tests", "janus"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from harness import BUILD, Kernel, module  # noqa: E402
from janus import Janus, free_port, janus_pp_rec, wait_for  # noqa: E402
from lab import SERVER_IP  # noqa: E402
from spine import keygen, plugin_config, stop_recording  # noqa: E402

PLUGIN = os.path.join(BUILD, "janus", "libjanus_outpost.so")
PKG = "janus.plugin.outpost"
SECRET = "operator-secret-for-link-tests"
W, H, FPS = 640, 480, 30
SERVER_KEYS = keygen()
DEVICE_KEYS = keygen()


class LabServer:
    """Janus + plugin in the lab's server namespace, one device `cam1`."""

    def __init__(self, lab, mode="always", device=None, **general):
        """device: more jcfg keys for cam1 (e.g. latency)."""
        self.lab = lab
        self.control_port = free_port()
        self.ingest_port = free_port(socket.SOCK_DGRAM)
        # Not under /dev: Janus refuses to write recordings into its protected folders.
        self.recordings = tempfile.mkdtemp(prefix="outpost-rec-", dir="/tmp")
        cfg = plugin_config(self.control_port, self.ingest_port, SERVER_KEYS[1], SECRET,
                            self.recordings, {"cam1": (DEVICE_KEYS[0], mode, device or {})},
                            ip=SERVER_IP,
                            **general)
        self.janus = Janus({PKG: PLUGIN}, {PKG: cfg}, name="lab", http_ip=lab.mgmt_ip,
                           preexec=lab.preexec("srv"), nat={"ice_enforce_list": "mg0"})

    def start(self):
        self.janus.start()
        return self

    def cleanup(self):
        self.janus.cleanup()
        shutil.rmtree(self.recordings, ignore_errors=True)

    def admin(self, request):
        return self.janus.admin(request, plugin=PKG)

    def device(self):
        return self.admin({"request": "status", "secret": SECRET, "id": "cam1"})["device"]

    def counters(self):
        return self.admin({"request": "status", "secret": SECRET})["counters"]

    def wait(self, pred, timeout, what, interval=0.05):
        """Polls the device's status until pred holds: (status, seconds)."""
        return wait_for(self.janus, self.device, pred, timeout, what, interval)

    def record_start(self):
        self.admin({"request": "record", "secret": SECRET, "id": "cam1", "action": "start"})

    def record_stop(self):
        """Stops the recording: (mp4 path, units the plugin recorded)."""
        d = stop_recording(self.admin, SECRET, "cam1")
        mjr = d["file"]
        assert mjr and os.path.exists(mjr), d
        mp4 = mjr[:-4] + ".mp4"
        rc, out = janus_pp_rec(mjr, mp4)
        assert rc == 0 and os.path.exists(mp4), out
        return mp4, d["units"]


def device_kernel(lab, srv, encoder="encoder-aom", bitrate=300, size=(W, H), speed=None,
                  **uplink):
    """The device in the lab's device namespace: test pattern -> encoder -> uplink.
    libaom: it keeps 30 fps live under ASan on a busy 2-core machine at 640x480
    up to a few hundred kbit/s; at 1500 it took 55 ms a frame (16 fps) on one,
    and sent half its target: a test that needs the encoder to keep to its
    target at such rates runs it smaller (size)."""
    return Kernel([module("capture", "capture-testsrc", width=size[0], height=size[1], fps=FPS),
                   module("encoder", encoder, bitrate=bitrate, fps=FPS,
                          **({"speed": speed} if speed is not None else {})),
                   module("uplink", "uplink", server=f"tcp://{SERVER_IP}:{srv.control_port}",
                          server_key=SERVER_KEYS[0], public_key=DEVICE_KEYS[0],
                          secret_key=DEVICE_KEYS[1], device="cam1", **uplink)],
                  name="labdev", preexec=lab.preexec("dev"))


def flowing(d):
    return d["online"] and 0 <= d["last_packet_age_ms"] < 500 and d["packets"] > 0


@contextlib.contextmanager
def lab_spine(mode="always", general=None, size=(W, H), speed=None, **uplink):
    """A lab, its server (plugin mode for cam1, more jcfg general keys) and the
    device (its picture's size, uplink settings), all stopped and cleaned up
    after: (lab, srv, k)."""
    from lab import Lab
    with Lab() as lab:
        srv = LabServer(lab, mode=mode, **(general or {})).start()
        k = None
        try:
            k = device_kernel(lab, srv, size=size, speed=speed, **uplink).start()
            yield lab, srv, k
        finally:
            if k:
                k.stop()
                k.cleanup()
            srv.cleanup()
