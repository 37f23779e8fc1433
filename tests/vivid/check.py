"""Reads what guest-test.sh left in the results folder and judges it.
Prints one line per check and "N passed, N failed"; exit 1 on any failure."""
import json
import math
import os
import sys

RES = sys.argv[1]
W, H = 640, 480
FRAME = W * H * 3 // 2
# vivid's default pattern: 75 % colour bars (white, yellow, cyan, green,
# magenta, red, blue, black) as BT.601 limited-range Y, U, V.
BARS = [(180, 128, 128), (162, 44, 142), (131, 156, 44), (112, 72, 58), (84, 184, 198),
        (65, 100, 212), (35, 212, 114), (16, 128, 128)]

results = []


def check(name):
    def wrap(fn):
        try:
            detail = fn()
            results.append((name, True, detail or ""))
        except Exception as e:  # noqa: BLE001 - every failure is reported the same way
            results.append((name, False, f"{type(e).__name__}: {e}"))
        return fn
    return wrap


def status(name):
    with open(os.path.join(RES, name + ".json")) as f:
        st = json.load(f)
    return {m["name"]: m for m in st["modules"]}


def fnv1a(b):
    h = 1469598103934665603
    for x in b:
        h = ((h ^ x) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


@check("captures >= 30 distinct 640x480 I420 frames")
def _():
    meta = [line.split() for line in open(os.path.join(RES, "frames.raw.txt"))]
    raw = open(os.path.join(RES, "frames.raw"), "rb").read()
    assert len(meta) >= 30, f"{len(meta)} frames"
    assert len(raw) == len(meta) * FRAME, f"{len(raw)} bytes for {len(meta)} frames"
    for i, m in enumerate(meta):
        assert (int(m[2]), int(m[3]), int(m[4]), int(m[6])) == (W, H, 1, FRAME), m
        assert fnv1a(raw[i * FRAME:(i + 1) * FRAME]) == int(m[7], 16), f"frame {i} damaged"
    numbers = [int(m[0]) for m in meta]
    assert all(b > a for a, b in zip(numbers, numbers[1:])), "frame numbers not increasing"
    distinct = len({m[7] for m in meta})
    assert distinct >= 0.9 * len(meta), f"only {distinct} distinct of {len(meta)}"
    return f"{len(meta)} frames, {distinct} distinct"


@check("the I420 planes hold vivid's colour bars (YUYV converted right)")
def _():
    raw = open(os.path.join(RES, "frames.raw"), "rb").read()
    for i in (0, len(raw) // FRAME - 1):
        f = raw[i * FRAME:(i + 1) * FRAME]
        y, u, v = f[:W * H], f[W * H:W * H * 5 // 4], f[W * H * 5 // 4:]
        for b, (ey, eu, ev) in enumerate(BARS):
            x = b * W // 8 + W // 16
            got = (y[300 * W + x], u[150 * (W // 2) + x // 2], v[150 * (W // 2) + x // 2])
            assert all(abs(g - e) <= 8 for g, e in zip(got, (ey, eu, ev))), \
                f"frame {i} bar {b}: YUV {got}, want {(ey, eu, ev)}"


@check("negotiated format reported in status")
def _():
    cap = status("status-a")["capture"]["module"]
    assert cap["driver"] == "vivid" and cap["state"] == "streaming", cap
    assert (cap["pixel_format"], cap["width"], cap["height"]) == ("YUYV", W, H), cap
    assert cap["fps"] > 0 and not cap["emulated"], cap
    return f"{cap['pixel_format']} {cap['width']}x{cap['height']} at {cap['fps']} fps"


@check("a buffer flagged as damaged is dropped and counted")
def _():
    a, b = status("status-a")["capture"], status("status-b")["capture"]
    assert b["module"]["error_buffers"] >= 1, b["module"]
    assert b["module"]["frames"] > a["module"]["frames"], "frames stopped"


@check("disconnect: ENODEV reported, recovered by the module itself")
def _():
    b, c = status("status-b")["capture"], status("status-c")["capture"]
    m = c["module"]
    assert m["disconnects"] >= 1 and m["opens"] >= 2 and m["state"] == "streaming", m
    assert m["frames"] >= b["module"]["frames"] + 20, "no frames after the disconnect"
    assert c["restarts"] == 0 and c["pid"] == b["pid"], "the kernel had to restart it"
    assert "ENODEV" in c["last_error"], c["last_error"]
    assert "ENODEV" in open(os.path.join(RES, "kernel-main.log")).read()
    return f"{m['frames'] - b['module']['frames']} frames after it"


@check("unsupported size: reports what the driver offered")
def _():
    c = status("status-size")["capture"]
    m = c["module"]
    assert (m["width"], m["height"]) != (1000, 100) and m["frames"] > 0, m
    assert "640x480" in m["offered"], m
    assert "driver offered" in c["last_error"] and "1000x100" in c["last_error"], c
    return c["last_error"]


@check("busy device: reported, then taken when free")
def _():
    b1, b2 = status("status-busy1")["capture"], status("status-busy2")["capture"]
    # Reported: waiting on it, or (a slow VM: the other program done before
    # the status was taken) already streaming, the busy error its last.
    assert ("busy" in b1["module"]["last_error"] and b1["module"]["state"] == "waiting") or \
        ("busy" in b1["last_error"] and b1["errors"] >= 1), b1
    assert b2["module"]["state"] == "streaming" and b2["module"]["frames"] > 0, b2
    assert b2["pid"] == b1["pid"] and b2["restarts"] == 0, "the kernel had to restart it"


@check("no device: reported and retried, not crashed")
def _():
    c = status("status-nodev")["capture"]
    assert c["module"]["state"] == "waiting", c
    assert "no such device" in c["module"]["last_error"], c
    assert c["state"] == "running" and c["restarts"] == 0, c


# --- encoder-v4l2m2m on vicodec --------------------------------------------
FMT_FWHT = 110
FWHT_I_FRAME = 1 << 10  # V4L2_FWHT_FL_I_FRAME, in the header's flags (big-endian, byte 20)
MIN_PSNR_Y = 35.0  # vicodec's default QP on the test pattern: 39.3-42.1 dB measured


def encoder(name):
    return status(name)["encoder"]


def units(prefix):
    """The sink's dump: [(meta list, bytes)]."""
    meta = [line.split() for line in open(os.path.join(RES, prefix + "-units.txt"))]
    raw = open(os.path.join(RES, prefix + "-units"), "rb").read()
    out, pos = [], 0
    for m in meta:
        size = int(m[6])
        out.append((m, raw[pos:pos + size]))
        pos += size
    assert pos == len(raw), f"{prefix}: {len(raw)} bytes dumped, the lines say {pos}"
    return out


def psnr(a, b):
    se = sum((x - y) * (x - y) for x, y in zip(a, b))
    return 99.0 if not se else 10 * math.log10(255 * 255 * len(a) / se)


def decoded_psnr(prefix, w, h):
    """PSNR-Y of each picture vicodec's decoder made from the units against
    the frame the encoder was given (test-tap's copy, by frame number), and of
    the same picture against the frame after that one (a control: the pattern
    moves, so a wrong pairing scores far lower)."""
    size = w * h * 3 // 2
    us = units(prefix)
    dec = open(os.path.join(RES, prefix + "-decoded.yuv"), "rb").read()
    tap = [line.split() for line in open(os.path.join(RES, prefix + "-raw.txt"))]
    raw = open(os.path.join(RES, prefix + "-raw"), "rb").read()
    at = {int(t[0]): i for i, t in enumerate(tap)}
    log = open(os.path.join(RES, prefix + "-decode.txt")).read()
    assert "decode rc=0" in log, log
    assert len(dec) == len(us) * size, f"{len(dec)} bytes decoded for {len(us)} units"
    got, control = [], []
    for i, (m, _) in enumerate(us):
        n = int(m[0])
        if n not in at or n + 1 not in at:
            continue
        pic = dec[i * size:i * size + w * h]
        got.append(psnr(raw[at[n] * size:at[n] * size + w * h], pic))
        control.append(psnr(raw[at[n + 1] * size:at[n + 1] * size + w * h], pic))
    assert len(got) >= 0.6 * len(us), f"only {len(got)} of {len(us)} units have their frame"
    assert min(got) >= MIN_PSNR_Y, f"PSNR-Y {min(got):.2f} dB < {MIN_PSNR_Y}: {got}"
    assert max(control) < min(got) - 3, f"the neighbour frame scores as well: {control}"
    return got, control


@check("encoder: found vicodec by its capabilities, FWHT from YU12 negotiated")
def _():
    e = encoder("enc-a")
    m, v = e["module"], e["module"]["v4l2"]
    assert e["state"] == "running" and m["codec"] == "fwht", e
    assert (v["driver"], v["coded"], v["raw"], v["api"]) == \
        ("vicodec", "FWHT", "YU12", "single-planar"), v
    assert v["device"].startswith("/dev/video") and v["device"] != "/dev/video0", v
    assert (m["width"], m["height"], v["gop"]) == (640, 480, 10), (m, v)
    return (f"{v['device']} ({v['driver']}, {v['api']}): {v['coded']} from {v['raw']} "
            f"{m['width']}x{m['height']}, {v['buffers']['output']}+{v['buffers']['capture']} "
            f"buffers, GOP {v['gop']}; encode {m['encode_ms_mean']:.0f} ms a frame under TCG")


@check("encoder: units flow, keyframe flags right (the FWHT header's) and every GOP")
def _():
    us = units("enc")
    assert len(us) == 15, f"{len(us)} units dumped"
    numbers = [int(m[0]) for m, _ in us]
    assert all(b > a for a, b in zip(numbers, numbers[1:])), numbers
    keys = []
    for i, (m, data) in enumerate(us):
        assert (int(m[2]), int(m[3]), int(m[4])) == (640, 480, FMT_FWHT), m
        intra = bool(int.from_bytes(data[20:24], "big") & FWHT_I_FRAME)
        assert bool(int(m[5]) & 1) == intra, f"unit {i}: flag {m[5]}, FWHT I-frame {intra}"
        if intra:
            keys.append(i)
    assert keys and keys[0] == 0 and len(keys) >= 2, keys
    assert all(b - a <= 10 for a, b in zip(keys, keys[1:])), f"keyframes at {keys} (GOP 10)"
    e = encoder("enc-a")["module"]
    return f"{e['units_out']} units in the first status, keyframes at units {keys}"


@check("encoder: missing controls reported unsupported, the module keeps running")
def _():
    a, b = encoder("enc-a"), encoder("enc-b")
    assert {"bitrate", "force keyframe"} <= set(a["module"]["v4l2"]["unsupported"]), a["module"]
    kf = json.load(open(os.path.join(RES, "enc-keyframe.json")))["reply"]
    br = json.load(open(os.path.join(RES, "enc-bitrate.json")))["reply"]
    assert "unsupported" in kf["note"] and "unsupported" in br["note"], (kf, br)
    assert b["module"]["v4l2"]["counts"]["keyframes_not_forced"] >= 1, b["module"]["v4l2"]
    assert b["pid"] == a["pid"] and b["restarts"] == 0 and b["state"] == "running", b
    assert b["module"]["units_out"] > a["module"]["units_out"], "no units after the commands"
    log = open(os.path.join(RES, "kernel-enc.log")).read()
    said = log.count("has no control for: bitrate, force keyframe")
    assert said == 2, f"said {said} times (once for each of the 2 encoder processes)"
    return "unsupported: " + ", ".join(a["module"]["v4l2"]["unsupported"])


@check("encoder: resize re-initialises (STOP -> LAST, then 640x360), same process")
def _():
    a, c = encoder("enc-a"), encoder("enc-c")
    sink = status("enc-c")["sink"]["module"]
    m, v = c["module"], c["module"]["v4l2"]
    assert (sink["width"], sink["height"]) == (640, 360), sink
    assert (m["width"], m["height"], m["last_reopen_why"]) == (640, 360, "new frame size"), m
    assert c["pid"] == a["pid"] and c["restarts"] == 0, c
    assert v["counts"]["drains"] >= 1 and v["counts"]["drain_timeouts"] == 0, v
    assert "LAST" in v["last_drain"], v
    assert m["keyframes"]["restart"] >= 2, m["keyframes"]  # the re-opened encoder's first unit
    assert (v["buffer_width"], v["buffer_height"]) >= (640, 360), v
    return (f"re-open {m['last_reopen_ms']:.0f} ms; drain: {v['last_drain']}; buffers "
            f"{v['buffer_width']}x{v['buffer_height']} cropped to 640x360")


@check("encoder: kill -9 -> restarted by the kernel, the device encodes again")
def _():
    c, d = encoder("enc-c"), encoder("enc-d")
    assert d["restarts"] == 1 and d["pid"] != c["pid"] and d["state"] == "running", d
    assert d["module"]["units_out"] >= 3, d["module"]
    sc, sd = status("enc-c")["sink"]["module"], status("enc-d")["sink"]["module"]
    assert sd["frames"] >= sc["frames"] + 5 and sd["backwards"] == 0, (sc, sd)
    return f"{d['module']['units_out']} units from the new process"


@check("encoder: stop drains (STOP -> LAST, EOS event) and the kernel exits 0")
def _():
    log = open(os.path.join(RES, "kernel-enc.log")).read()
    tail = log[log.index("Terminated: stopping modules"):]
    line = next((x for x in tail.splitlines() if "drained: STOP -> LAST" in x), None)
    assert line and "EOS event" in line and "no EOS" not in line, tail
    assert "kernel exit 0" in log and "no LAST buffer" not in log, log[-800:]
    return line.split("drained: ")[1]


@check("encoder: vicodec's decoder decodes the units; PSNR-Y against the frames given")
def _():
    got, control = decoded_psnr("enc", 640, 480)
    return (f"{len(got)} pictures, PSNR-Y {min(got):.2f}-{max(got):.2f} dB (bound "
            f"{MIN_PSNR_Y}); against the next frame {min(control):.2f}-{max(control):.2f} dB")


@check("encoder: multi-planar API with NV12 input (vicodec multiplanar=1, device named)")
def _():
    e = encoder("mp-a")
    v = e["module"]["v4l2"]
    assert (v["api"], v["raw"], e["state"]) == ("multi-planar", "NV12", "running"), v
    got, _ = decoded_psnr("mp", 640, 480)
    return f"{len(got)} pictures decode, PSNR-Y {min(got):.2f}-{max(got):.2f} dB"


@check("encoder: no format (h264 asked, the device has FWHT): refused, naming both")
def _():
    e = status("mp-a")["nofmt"]
    why = e["last_error"]
    assert "no format" in why and "h264" in why and "FWHT" in why and "vicodec" in why, e
    assert e["module"] is None or not e["module"].get("units_out"), e
    return why
def _():
    for name in ("main", "size", "busy", "nodev", "enc", "mp"):
        log = open(os.path.join(RES, f"kernel-{name}.log")).read()
        assert "kernel exit 0" in log, f"{name}: {log[-500:]}"
        # EAGAIN is no error: the module must not ask libv4l2 for frames that are not there
        assert "error dequeuing buf: Resource temporarily" not in log, f"{name}: EAGAIN spam"


for name, ok, detail in results:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
passed = sum(1 for r in results if r[1])
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
