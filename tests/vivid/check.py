"""Reads what guest-test.sh left in the results folder and judges it.
Prints one line per check and "N passed, N failed"; exit 1 on any failure."""
import json
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
    assert b1["module"]["state"] == "waiting" and "busy" in b1["module"]["last_error"], b1
    assert b2["module"]["state"] == "streaming" and b2["module"]["frames"] > 0, b2
    assert b2["pid"] == b1["pid"] and b2["restarts"] == 0, "the kernel had to restart it"


@check("no device: reported and retried, not crashed")
def _():
    c = status("status-nodev")["capture"]
    assert c["module"]["state"] == "waiting", c
    assert "no such device" in c["module"]["last_error"], c
    assert c["state"] == "running" and c["restarts"] == 0, c


@check("every kernel stopped cleanly (exit 0)")
def _():
    for name in ("main", "size", "busy", "nodev"):
        log = open(os.path.join(RES, f"kernel-{name}.log")).read()
        assert "kernel exit 0" in log, f"{name}: {log[-500:]}"
        # EAGAIN is no error: the module must not ask libv4l2 for frames that are not there
        assert "error dequeuing buf: Resource temporarily" not in log, f"{name}: EAGAIN spam"


for name, ok, detail in results:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
passed = sum(1 for r in results if r[1])
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
