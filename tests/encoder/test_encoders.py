"""Encoder modules under the real kernel, judged by an independent decoder.

For each encoder: quality and rate on a hard clip and on the test pattern's own
content (PSNR-Y vs the source, bitrate within 15 %, no keyframes but the first);
live test pattern with a keyframe request (out within the encoder's delay + 1
frame) and the stamps read back from the decoded pictures; a bitrate change
(next 5 s within 20 % of the new target, one decodable stream) and a kill -9
(the first unit after the restart is a keyframe); a change of frame size
(followed without a restart, starting with a keyframe). Then the fallback: x265
with an impossible setting gives way to rav1e after the restart intensity."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kernel"))  # harness, media
from harness import BIN, Kernel, module, run_cases  # noqa: E402
from media import (FMT_AV1, FMT_H265, decode, make_clip, psnr_y, read_units,  # noqa: E402
                   read_y4m, write_stream, write_y4m)

W, H, FPS = 640, 480, 30
FRAME = W * H * 3 // 2
ENCODERS = {
    "encoder-rav1e": {"fmt": FMT_AV1, "delay": 4, "min_psnr": 33.0},
    "encoder-x265": {"fmt": FMT_H265, "delay": 0, "min_psnr": 32.0},
    # SVT-AV1 1.4.1 low delay holds one frame; a keyframe on request re-creates it.
    "encoder-svtav1": {"fmt": FMT_AV1, "delay": 1, "min_psnr": 33.0},
    # libaom 3.6 real-time (cpu-used 8, non-RD mode decisions) leaves a stamp
    # unreadable on ~0.5 % of live frames (0-3 of ~267 a run; aq-mode and
    # cpu-used 7/9 no better): one of the 120 cells misread, the CRC refuses it.
    "encoder-aom": {"fmt": FMT_AV1, "delay": 0, "min_psnr": 33.0, "min_stamps": 0.98},
}
WORK = tempfile.mkdtemp(prefix="outpost-enc-", dir="/dev/shm")
CLIPS = {}


def clip(kind):
    """The hard lavfi clip, or the test pattern's own frames recorded once."""
    if kind in CLIPS:
        return CLIPS[kind]
    path = os.path.join(WORK, f"{kind}.y4m")
    if kind == "hard":
        make_clip(path, "hard")
    else:
        dump = os.path.join(WORK, "testsrc.raw")
        k = Kernel([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
                    module("sink", "test-sink", pattern=False, dump=dump, dump_frames=300)],
                   name="rec").start()
        try:
            k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) >= 300, 20, "300 frames")
        finally:
            k.stop()
            k.cleanup()
        raw = open(dump, "rb").read()
        write_y4m(path, W, H, [raw[i * FRAME:(i + 1) * FRAME] for i in range(300)])
    CLIPS[kind] = path
    return path


def run(modules, seconds, actions=(), name="enc"):
    """Runs a chain for `seconds`; actions: (at_s, fn(kernel)) -> results by at_s."""
    k = Kernel(modules, name=name).start()
    out = {}
    try:
        t0 = time.monotonic()
        for at, fn in sorted(actions, key=lambda a: a[0]):
            time.sleep(max(0, at - (time.monotonic() - t0)))
            out[at] = fn(k)
        time.sleep(max(0, seconds - (time.monotonic() - t0)))
        out["status"] = k.status()
    finally:
        k.stop()
        k.check_clean_log()
        out["log"] = k.read_log()
        k.cleanup()
    return out


def decoded(units, tag):
    stream = os.path.join(WORK, f"{tag}.stream")
    yuv = os.path.join(WORK, f"{tag}.yuv")
    write_stream(stream, units)
    rc, err = decode(stream, units[0][0]["format"], yuv)
    assert rc == 0 and not err, f"{tag}: the decoder complained: {err[:500]}"
    n = os.path.getsize(yuv) // FRAME
    assert n == len(units), f"{tag}: {len(units)} units gave {n} pictures"
    return yuv


def stream_kbps(units):
    """Bytes over the time the units span (numbers count frame intervals)."""
    span = (units[-1][0]["number"] - units[0][0]["number"] + 1) / FPS
    return sum(len(d) for _, d in units) * 8 / 1000 / span


def quality(enc, kind):
    spec = ENCODERS[enc]
    src = clip(kind)
    dump = os.path.join(WORK, f"{enc}-{kind}.units")
    run([module("capture", "capture-y4m", file=src),
         module("encoder", enc, bitrate=500, fps=FPS),
         module("sink", "test-sink", pattern=False, dump=dump, dump_frames=400)], 10.5)
    units = read_units(dump)
    assert len(units) >= 280, f"only {len(units)} units in 10 s"
    assert all(m["format"] == spec["fmt"] for m, _ in units)
    keys = [i for i, (m, _) in enumerate(units) if m["key"]]
    assert keys == [0], f"keyframes at units {keys}: only the first was wanted"
    yuv = decoded(units, f"{enc}-{kind}")
    # Align the source: the first decoded picture is the file frame it is closest
    # to; from there numbers count frame intervals, as the file's index does.
    _, _, frames = read_y4m(src)
    first = open(yuv, "rb").read(W * H)
    sample = range(0, W * H, 61)
    i0 = min(range(len(frames)),
             key=lambda i: sum(abs(first[p] - frames[i][p]) for p in sample))
    n0 = units[0][0]["number"]
    ref = os.path.join(WORK, f"{enc}-{kind}.ref")
    with open(ref, "wb") as f:
        for m, _ in units:
            f.write(frames[(i0 + m["number"] - n0) % len(frames)])
    psnr = psnr_y(yuv, ref, W, H)
    rate = stream_kbps(units)
    assert psnr >= spec["min_psnr"], f"PSNR-Y {psnr:.2f} dB < {spec['min_psnr']}"
    assert abs(rate - 500) <= 75, f"{rate:.0f} kbit/s for a 500 kbit/s target"
    print(f"     {enc} on {kind}: {len(units)} units decode, PSNR-Y {psnr:.2f} dB, "
          f"{rate:.0f} kbit/s, one keyframe")


def live(enc):
    """Live test pattern: a keyframe on request, and the stamps survive."""
    spec = ENCODERS[enc]
    dump = os.path.join(WORK, f"{enc}-live.units")

    def ask_key(k):
        r = k.send("encoder", "keyframe")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["reply"]

    out = run([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
               module("encoder", enc, bitrate=500, fps=FPS),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=400)], 9,
              [(5, ask_key)])
    reply = out[5]
    units = read_units(dump)
    numbers = [m["number"] for m, _ in units]
    keys = [i for i, (m, _) in enumerate(units) if m["key"]]
    assert len(keys) == 2 and keys[0] == 0, f"keyframes at {keys}: want the first and one more"
    assert reply["last_out"] in numbers, reply
    after = numbers.index(reply["last_out"])
    waited = keys[1] - after
    assert 1 <= waited <= spec["delay"] + 1, \
        f"keyframe came {waited} units after the request (delay {spec['delay']} + 1 allowed)"
    yuv = decoded(units, f"{enc}-live")
    raw = open(yuv, "rb").read()
    r = subprocess.run([os.path.join(BIN, "stamp-read"), f"{W}x{H}", "-"], input=raw,
                       capture_output=True, check=True)
    read = [line.split() for line in r.stdout.decode().splitlines()]
    good = wrong = 0
    for s, (m, _) in zip(read, units):
        if s[1] == "none":
            continue
        if int(s[1]) == m["number"] & 0xFFFFFFFF and int(s[2]) == m["capture_us"] // 1000:
            good += 1
        else:
            wrong += 1
    assert wrong == 0, f"{wrong} stamps disagree with the metadata"
    assert good >= spec.get("min_stamps", 0.99) * len(units), \
        f"only {good} of {len(units)} stamps read"
    lat = sorted(m["encode_us"] for m, _ in units)
    print(f"     {enc} live: keyframe {waited} unit(s) after the request "
          f"(in flight {reply['in_flight']}), in {units[keys[1]][0]['encode_us'] / 1000:.1f} ms "
          f"(median unit {lat[len(lat) // 2] / 1000:.1f} ms); stamps {good}/{len(units)} "
          f"equal the metadata")


def rate_change_and_kill(enc):
    dump = os.path.join(WORK, f"{enc}-rate.units")
    marks = {}

    def to_250(k):
        marks["t"] = time.time()
        r = k.send("encoder", "bitrate", {"kbps": 250})
        assert r.returncode == 0, r.stderr

    def kill(k):
        marks["pid"] = k.mod("encoder")["pid"]
        marks["kill"] = time.time()
        os.kill(marks["pid"], signal.SIGKILL)

    def restarted(k):
        st, _ = k.wait(lambda s: k.mod("encoder", s)["state"] == "running"
                       and k.mod("encoder", s)["pid"] != marks["pid"], 5, "encoder back")
        return k.mod("encoder", st)

    out = run([module("capture", "capture-y4m", file=clip("hard")),
               module("encoder", enc, bitrate=500, fps=FPS),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=500)], 14,
              [(3, to_250), (4, lambda k: k.mod("encoder")["module"]), (9.5, kill),
               (10, restarted)])
    st = out[4]
    how = (f"in place ({st['reconfigured_in_place']}x)" if st["reconfigured_in_place"] else
           f"re-opened in {st['last_reopen_ms']:.1f} ms")
    units = read_units(dump)
    t_cmd, t_kill = marks["t"] * 1e6, marks["kill"] * 1e6
    window = [u for u in units if t_cmd + 0.2e6 <= u[0]["capture_us"] < t_cmd + 5.2e6]
    rate = stream_kbps(window)
    assert abs(rate - 250) <= 50, f"{rate:.0f} kbit/s in the 5 s after 'bitrate 250'"
    before_kill = [u for u in units if u[0]["capture_us"] < t_kill - 0.2e6]
    decoded(before_kill, f"{enc}-rate")  # one file across the change
    # The restart is the widest gap in the numbers; the unit after it opens the new encoder.
    gap = max(range(1, len(units)),
              key=lambda i: units[i][0]["number"] - units[i - 1][0]["number"])
    jump = units[gap][0]["number"] - units[gap - 1][0]["number"]
    assert jump >= 3 and units[gap][0]["capture_us"] > t_kill - 0.5e6, \
        f"no restart gap after the kill (widest: {jump} at unit {gap})"
    assert units[gap][0]["key"], "the first unit after the restart is not a keyframe"
    assert out[10]["restarts"] == 1, out[10]
    print(f"     {enc}: {rate:.0f} kbit/s over the 5 s after 'bitrate 250' ({how}); after kill -9 "
          f"the first unit (after a gap of {jump} numbers) is a keyframe")


def resize(enc):
    """The capture re-negotiates its size: the encoder follows without a restart."""
    dump = os.path.join(WORK, f"{enc}-resize.units")
    marks = {}

    def shrink(k):
        marks["pid"] = k.mod("encoder")["pid"]
        r = k.send("capture", "resolution", {"width": 320, "height": 240})
        assert r.returncode == 0, r.stderr

    out = run([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
               module("encoder", enc, bitrate=500, fps=FPS),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=400)], 5,
              [(2, shrink)])
    units = read_units(dump)
    sizes = [(m["width"], m["height"]) for m, _ in units]
    first_small = sizes.index((320, 240))
    assert set(sizes[first_small:]) == {(320, 240)} and set(sizes[:first_small]) == {(W, H)}
    assert units[first_small][0]["key"], "the first unit at the new size is not a keyframe"
    small = units[first_small:]
    stream = os.path.join(WORK, f"{enc}-small.stream")
    write_stream(stream, small)
    rc, err = decode(stream, small[0][0]["format"], os.path.join(WORK, f"{enc}-small.yuv"))
    assert rc == 0 and not err, err
    assert os.path.getsize(os.path.join(WORK, f"{enc}-small.yuv")) == len(small) * 320 * 240 * 3 // 2
    e = next(m for m in out["status"]["modules"] if m["name"] == "encoder")
    assert e["pid"] == marks["pid"] and e["restarts"] == 0, e
    assert e["module"]["last_reopen_why"] == "new frame size", e["module"]
    print(f"     {enc}: 640x480 -> 320x240 without a restart; {len(small)} units at the new "
          f"size decode, the first a keyframe ({e['module']['last_reopen_ms']:.1f} ms re-open)")


def test_fallback_to_av1():
    dump = os.path.join(WORK, "fallback.units")
    k = Kernel([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
                module("encoder", "encoder-x265", fallback="encoder-rav1e", bitrate=500,
                       preset="no-such-preset"),
                module("sink", "test-sink", pattern=False, dump=dump, dump_frames=100)],
               name="fallback").start(wait_running=False)
    try:
        st, took = k.wait(lambda s: k.mod("encoder", s)["fallback_active"]
                          and k.mod("encoder", s)["state"] == "running"
                          and (k.mod("sink", s)["frames_in"] or 0) > 20, 20, "AV1 flowing")
        enc = k.mod("encoder", st)
        assert enc["plugin"] == "encoder-rav1e" and enc["configured_plugin"] == "encoder-x265"
        assert "no-such-preset" in enc["last_error"], enc["last_error"]
        r = subprocess.run([os.path.join(BIN, "outpostctl"), "-c", k.config, "status"],
                           capture_output=True, text=True)
        assert "encoder-rav1e*" in r.stdout and "fallback for encoder-x265" in r.stdout, r.stdout
    finally:
        k.stop()
        k.cleanup()
    units = read_units(dump)
    assert units and all(m["format"] == FMT_AV1 for m, _ in units)
    print(f"     x265 refused ({enc['last_error']}); AV1 flowing {took:.1f} s after start")


def case(fn, *args):
    def wrapped():
        fn(*args)
    wrapped.__name__ = f"{fn.__name__}[{', '.join(str(a) for a in args)}]"
    return wrapped


try:
    cases = []
    only = os.environ.get("OUTPOST_ENCODERS", " ".join(ENCODERS)).split()
    for enc in only:
        cases += [case(quality, enc, "hard"), case(quality, enc, "testsrc"), case(live, enc),
                  case(rate_change_and_kill, enc), case(resize, enc)]
    cases.append(test_fallback_to_av1)
    pick = os.environ.get("OUTPOST_CASES")  # e.g. OUTPOST_CASES=resize, while working on one
    run_cases([c for c in cases if not pick or pick in c.__name__])
finally:
    shutil.rmtree(WORK, ignore_errors=True)
