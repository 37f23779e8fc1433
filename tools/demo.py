"""The demo: the whole spine on this machine, then a URL to open.

- Janus with janus.plugin.outpost from a private config folder under /dev/shm
  (never /etc/janus), control port 7700 as configs/device.cfg expects;
- a static server for web/ (and Debian's janus.js / adapter.js);
- the device kernel with configs/device.cfg: test pattern -> AV1 -> uplink to
  this Janus; with /dev/video0 present, the webcam instead of the test pattern.
Keys are made on the first run and kept in configs/keys/ (git ignores it):
server.keys and demo.keys (outpostctl keygen), and device.keys, which
device.cfg @includes. Ctrl-C stops everything it started.
   tools/demo   (it installs, builds, then runs this)"""
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spine import BIN, Spine  # noqa: E402

CONFIGS = os.path.join(ROOT, "configs")
KEYS = os.path.join(CONFIGS, "keys")
SECRET = "demo-operator-secret"
CONTROL_PORT = 7700  # configs/device.cfg: server = "tcp://127.0.0.1:7700"
WEB_PORT = 8080


def device_keys(spine):
    """configs/keys/device.keys: what the uplink's settings @include."""
    pub, sec = spine.device_keys["demo"]
    text = (f'server_key = "{spine.server_keys[0]}";\npublic_key = "{pub}";\n'
            f'secret_key = "{sec}";\n')
    path = os.path.join(KEYS, "device.keys")
    if not os.path.exists(path) or open(path).read() != text:
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(text)


def device_config(run):
    """configs/device.cfg as it is, or (with /dev/video0) a copy that captures the webcam."""
    cfg = os.path.join(CONFIGS, "device.cfg")
    if not os.path.exists("/dev/video0"):
        return cfg, "the test pattern"
    text = open(cfg).read()
    text = text.replace('plugin = "capture-testsrc";', 'plugin = "capture-v4l2";', 1)
    text = re.sub(r'(plugin = "capture-v4l2";[^\n]*\n\s*settings = \{)',
                  r'\1 device = "/dev/video0";', text, count=1)
    text = text.replace('"../build/', f'"{ROOT}/build/').replace(
        '@include "keys/', f'@include "{KEYS}/')
    path = os.path.join(run, "device-webcam.cfg")
    with open(path, "w") as f:
        f.write(text)
    return path, "/dev/video0"


def main():
    kw = dict(secret=SECRET, keys_dir=KEYS, control_port=CONTROL_PORT, name="demo")
    try:
        spine = Spine(["demo"], web_port=WEB_PORT, **kw)
    except OSError:
        spine = Spine(["demo"], **kw)  # 8080 taken: any free port
    device_keys(spine)
    took = spine.janus.start()
    spine.web.start()
    cfg, source = device_config(spine.janus.dir)
    log_path = os.path.join(spine.janus.dir, "kernel.log")
    log = open(log_path, "w")
    kernel = subprocess.Popen([os.path.join(BIN, "outpost-kernel"), "-c", cfg], stdout=log,
                              stderr=log, start_new_session=True)
    print(f"demo: Janus up in {took * 1000:.0f} ms (API {spine.janus.url}, Admin API "
          f"{spine.janus.admin_url}, admin secret {spine.janus.admin_secret}), log "
          f"{spine.janus.log_path}")
    print(f"demo: device kernel pid {kernel.pid}: {cfg} ({source} -> AV1 -> uplink), log {log_path}")
    print(f"demo: operator secret: {SECRET}")
    print(f"\n    open  {spine.url}&watch=demo\n")
    stop = []
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    next_report = time.monotonic() + 5
    try:
        while not stop:
            time.sleep(0.2)
            if kernel.poll() is not None:
                print(f"demo: the device kernel exited ({kernel.returncode}); see {log_path}")
                break
            if time.monotonic() < next_report:
                continue
            next_report += 5
            try:
                d = spine.admin({"request": "list"})["list"][0]
                print(f"demo: {d['id']}: online={d['online']} codec={d['codec'] or '-'} "
                      f"{d['bitrate_kbps']:.0f} kbit/s, {d['viewers']} viewer(s), last packet "
                      f"{d['last_packet_age_ms']} ms ago")
            except Exception as e:  # noqa: BLE001 - keep showing, whatever Janus says
                print(f"demo: Janus: {e}")
    finally:
        if kernel.poll() is None:
            kernel.send_signal(signal.SIGTERM)
            try:
                kernel.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(kernel.pid, signal.SIGKILL)
        spine.stop()
        spine.cleanup()
        print("demo: stopped")


if __name__ == "__main__":
    main()
