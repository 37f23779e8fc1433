"""Encoder modules under the real kernel, judged by an independent decoder.

For each encoder: quality and rate on a hard clip and on the test pattern's own
content (PSNR-Y vs the source, bitrate within 15 % - on the easy pattern only
its upper bound, and a floor of half -, no keyframes but the first);
live test pattern with a keyframe request (out within the encoder's delay + 1
unit) and the stamps read back from the decoded pictures; a bitrate change (the
units after it within 20 % of the new target, one decodable stream) and a kill -9
(the first unit after the restart is a keyframe, and what follows decodes); a
change of frame size (followed without a restart, starting with a keyframe).
Then the fallback: x265 with an impossible setting gives way to rav1e after the
restart intensity; and the shared core's recovery from a unit lost downstream
(nothing undecodable sent, a keyframe forced until one gets through).

These tests assert BEHAVIOUR, never this machine's speed (that is tools/bench's
job). The sources are live: a frame the encoder is too busy for is dropped at
the source and counted, as on a device, and that is no failure. So:
- "the encoder kept producing" is: frame numbers only go up, no stretch of
  STALL_S (the kernel's heartbeat timeout: longer would be a hang by the
  kernel's own definition) without a unit, units from the start to the end;
- the rate is judged per unit: bytes / (units x frame interval), the frames
  the core's rate guard chose not to encode counted with the units. Every encoder
  here spends its budget per frame (timestamps advance one frame interval per
  frame given), so frames dropped before it change the rate on the wall clock,
  not what the encoder does with a frame; a rate change is judged over the same
  number of units (5 s of frames) whatever the wall clock took;
- keyframes are counted in units, stamps and decoding over the units that came.
Each test prints how many of the captured frames reached the encoder.

rav1e is paced (ENCODERS[...]["pace"]): its quality at 640x480 and 5 fps, at
83 kbit/s (the same 16.7 kbit a frame as 500 kbit/s at 30 fps, so the calibrated
PSNR thresholds hold), and everything else (keyframe on request and stamps, rate
change and kill, resize, fallback) at 320x240 and 10 fps, where a frame costs it
a quarter as much: commands are answered and re-opens drain in time even under
ASan on a busy machine. Why it is slow here: in the release build rav1e 0.5.1
keeps 30 fps live at 640x480; under ASan it did 14-18 units/s in the kernel, and
on this machine while two other engineers' builds ran (load ~7) its time per
frame at 640x480 was 255-405 ms (p99 1.0-1.9 s), against 67-75 ms at 320x240.
The host reads commands and sends heartbeats between frames (up to 8 frames a
turn), so a few such frames in a row outlast the kernel's 2 s command timeout
(seen at 640x480 and 10 fps with the other core busy too: "the module did not
answer within 2 s") and a re-open's drain of 4 frames in flight approaches the
3 s heartbeat timeout.
The cause, measured with tools/bench's bench_encode (150 frames of the hard
clip, 640x480, 500 kbit/s, unpaced; 3 interleaved rounds), CPU per frame:
release build 28-34 ms; sanitized build 76-86 ms; the RELEASE build with only
libasan LD_PRELOADed 77-78 ms. So the whole cost is ASan's runtime serving the
uninstrumented librav1e's allocations through malloc interposition, not the
instrumentation of our code (encoder-rav1e.so and the host are 0.04 % of the
perf samples). rav1e (Rust, system allocator) allocates ~830 blocks a frame,
~45 of them >= 128 KiB (11.5 MB a frame: 128-256 KiB x 25, 256-512 KiB x 14,
512 KiB-1 MiB x 7). glibc serves those from its heap after the first few (its
mmap threshold rises to the sizes freed); ASan's allocator serves every block
of 128 KiB or more (past its largest size class once its header is added) with
a fresh mmap, and unmaps it when it leaves the quarantine (checked with a loop
of malloc/free under libasan, quarantine off: 64 KiB reused, 128 KiB one mmap,
munmap and madvise each): strace -c counted 9920 mmap, 6028 munmap and 10553
madvise against 80, 52 and 0; minor page faults 348k against 26-29k; system time
4.6-5.1 s against 0.24-0.31 s; perf: 33 % of the samples in the kernel (page
faults, munmap) against 7 %, libc's memset/memmove 17 % against 8 % (first touch
of fresh pages), libasan 7 %. The release build with glibc made to mmap every
block >= 128 KiB (MALLOC_MMAP_THRESHOLD_=131072) takes 51-54 ms a frame with
238-244k faults: the same mechanism without ASan. ASAN_OPTIONS do not cure it
(quarantine off: 73-81 ms, 329k faults). At 320x240, 16 blocks a frame
are still >= 128 KiB: 13 ms a frame release, 25 ms sanitized."""
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
from media import (FMT_AV1, FMT_H264, FMT_H265, decode, make_clip, psnr_y,  # noqa: E402
                   read_units, read_y4m, write_stream, write_y4m)

W, H, FPS = 640, 480, 30
# No unit for this long (capture time) is a stall: the kernel kills a module
# whose loop is silent for heartbeat_timeout (3 s), so an encoder that takes
# longer than this over one frame is a hung one, on any machine.
STALL_S = 3.0
ENCODERS = {
    # rav1e under ASan: see the header. Quality at 640x480 and 5 fps, the rest
    # (commands, re-opens, a restart) at 320x240 and 10 fps; bits per frame as at 30 fps.
    "encoder-rav1e": {"fmt": FMT_AV1, "delay": 4, "min_psnr": 33.0,
                      "pace": {"quality": (640, 480, 5), "live": (320, 240, 10)}},
    # min_stamps: behind the slow sink (lost_unit_recovery) ~50 forced keyframes
    # in 3 s leave it at its quantizer ceiling, and a stamp may not read (2 of 112
    # in a CI run beside the VM test: none wrong, none repeated).
    "encoder-x265": {"fmt": FMT_H265, "delay": 0, "min_psnr": 32.0, "min_stamps": 0.98},
    # x264 superfast + zerolatency, Constrained Baseline: no frame in flight.
    # On the hard clip (where the rate's lower bound is judged) its quality and
    # rate are judged from 5 s on: the sink often connects after
    # the encoder's first units (lost downstream), and the core forces a keyframe
    # a frame until one gets through (3-6 IDRs). x264's CBR-style ABR keeps their
    # cost in its complexity sum, which decays by ~0.8 % a frame with a 1 s VBV
    # (cbr_decay), so it runs ~20 % under the target for ~6 s after them (hard
    # clip: 296-460 kbit/s a second over the first 5 s, 399-406 per unit, against
    # 490-497 without the losses; x265 is back within 2 s). A device whose uplink
    # is not there yet starts the same way: cheaper, never over.
    # PSNR-Y measured 36.49-36.56 dB on the hard clip, 42.7-44.7 on the pattern.
    "encoder-x264": {"fmt": FMT_H264, "delay": 0, "min_psnr": 33.0, "settle_s": 5},
    # SVT-AV1 1.4.1 low delay holds one frame; a keyframe on request re-creates it.
    "encoder-svtav1": {"fmt": FMT_AV1, "delay": 1, "min_psnr": 33.0},
    # libaom 3.6 real-time (cpu-used 8, non-RD mode decisions) leaves a stamp
    # unreadable on ~0.5 % of live frames (0-3 of ~267 a run; aq-mode and
    # cpu-used 7/9 no better): one of the 120 cells misread, the CRC refuses it.
    "encoder-aom": {"fmt": FMT_AV1, "delay": 0, "min_psnr": 33.0, "min_stamps": 0.98},
}
WORK = tempfile.mkdtemp(prefix="outpost-enc-", dir="/dev/shm")
CLIPS = {}


def pace(enc, test="live"):
    """(width, height, fps, kbit/s function): the size and frame rate an encoder is
    tested at ("quality" for the quality tests, "live" for the rest; 640x480 at
    30 fps unless its spec says otherwise) and its bitrates, scaled from the
    30 fps figures to the same bits per frame."""
    w, h, fps = ENCODERS[enc].get("pace", {}).get(test, (W, H, FPS))
    return w, h, fps, lambda kbps: round(kbps * fps / FPS)


def clip(kind, w=W, h=H):
    """The hard lavfi clip, or the test pattern's own frames recorded once."""
    if (kind, w, h) in CLIPS:
        return CLIPS[kind, w, h]
    path = os.path.join(WORK, f"{kind}-{w}x{h}.y4m")
    if kind == "hard":
        make_clip(path, "hard", size=f"{w}x{h}")
    else:
        dump = os.path.join(WORK, "testsrc.raw")
        frame = w * h * 3 // 2
        # At 60 fps: the pattern moves by frame number, not time, so the frames
        # are those of 30 fps, recorded in 5 s instead of 10.
        k = Kernel([module("capture", "capture-testsrc", width=w, height=h, fps=60),
                    module("sink", "test-sink", pattern=False, dump=dump, dump_frames=300)],
                   name="rec").start()
        try:
            k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) >= 300, 60, "300 frames")
        finally:
            k.stop()
            k.cleanup()
        raw = open(dump, "rb").read()
        os.remove(dump)
        write_y4m(path, w, h, [raw[i * frame:(i + 1) * frame] for i in range(300)])
    CLIPS[kind, w, h] = path
    return path


def run(modules, seconds, actions=(), name="enc", profile=None):
    """Runs a chain for at least `seconds`; actions: (at_s, fn(kernel)) -> results
    by at_s, run in order (an action may wait; the next one then starts late).
    Also returns the wall-clock start and end ("t0", "t_end", seconds since the epoch)."""
    k = Kernel(modules, name=name, profile=profile).start()
    out = {"t0": time.time()}
    try:
        t0 = time.monotonic()
        for at, fn in sorted(actions, key=lambda a: a[0]):
            time.sleep(max(0, at - (time.monotonic() - t0)))
            out[at] = fn(k)
        time.sleep(max(0, seconds - (time.monotonic() - t0)))
        out["t_end"] = time.time()
        out["status"] = k.status()
    finally:
        k.stop()
        k.check_clean_log()
        out["log"] = k.read_log()
        k.cleanup()
    return out


def decoded(units, tag, w=W, h=H):
    """Every unit decodes, into exactly one picture each, without a complaint."""
    stream = os.path.join(WORK, f"{tag}.stream")
    yuv = os.path.join(WORK, f"{tag}.yuv")
    write_stream(stream, units)
    rc, err = decode(stream, units[0][0]["format"], yuv)
    assert rc == 0 and not err, f"{tag}: the decoder complained: {err[:500]}"
    n = os.path.getsize(yuv) // (w * h * 3 // 2)
    assert n == len(units), f"{tag}: {len(units)} units gave {n} pictures"
    return yuv


def unit_kbps(units, fps, skipped=0):
    """The rate the encoder gave the frames it got: bytes / (frames x frame
    interval), the frames being the units and those its rate guard skipped."""
    return sum(len(d) for _, d in units) * 8 / 1000 / ((len(units) + skipped) / fps)


def kept(units):
    """Share of the frames captured over the units' span that became units."""
    span = units[-1][0]["number"] - units[0][0]["number"] + 1
    return len(units) / span


def flowing(units, t0, t_end, what, restart=None):
    """The encoder produced units continuously from start to end: frame numbers
    only go up, no stretch of STALL_S without a unit (in capture time; `restart`
    is the index of the unit after a kill -9, whose gap the kill explains), the
    first unit captured within STALL_S of the start and the last one out of the
    encoder (capture time + its time inside) within STALL_S of the end.
    Returns the longest gap, in seconds."""
    assert units, f"{what}: no units at all"
    nums = [m["number"] for m, _ in units]
    steps = [b - a for a, b in zip(nums, nums[1:])]
    bad = [(i + 1, s) for i, s in enumerate(steps) if s < 1]
    assert not bad, f"{what}: numbers repeat or go backwards at (unit, step) {bad[:5]}"
    cap = [m["capture_us"] / 1e6 for m, _ in units]
    gaps = [(cap[i] - cap[i - 1], i) for i in range(1, len(units)) if i != restart]
    gap, at = max(gaps, default=(0, 0))
    assert gap <= STALL_S, f"{what}: no unit for {gap:.2f} s (before unit {at} of {len(units)})"
    assert cap[0] - t0 <= STALL_S, f"{what}: the first unit came from {cap[0] - t0:.2f} s in"
    out_last = cap[-1] + units[-1][0]["encode_us"] / 1e6
    assert t_end - out_last <= STALL_S, \
        f"{what}: no unit in the last {t_end - out_last:.2f} s of the run"
    return gap


def keyframes(units):
    return [i for i, (m, _) in enumerate(units) if m["key"]]


def source_psnr(units, src, tag, w, h, skip=0):
    """PSNR-Y of the decoded units (from the skip-th on) against the clip they
    were coded from. Aligned: the first decoded picture is the file frame it is
    closest to; from there numbers count frame intervals, as the file's index does."""
    yuv = decoded(units, tag, w, h)
    _, _, frames = read_y4m(src)
    first = open(yuv, "rb").read(w * h)
    sample = range(0, w * h, 61)
    i0 = min(range(len(frames)),
             key=lambda i: sum(abs(first[p] - frames[i][p]) for p in sample))
    n0 = units[0][0]["number"]
    ref = os.path.join(WORK, f"{tag}.ref")
    with open(ref, "wb") as f:
        for m, _ in units[skip:]:
            f.write(frames[(i0 + m["number"] - n0) % len(frames)])
    if skip:
        with open(yuv, "rb") as f:
            f.seek(skip * (w * h * 3 // 2))
            rest = f.read()
        with open(yuv, "wb") as f:
            f.write(rest)
    return psnr_y(yuv, ref, w, h)


def h264_nals(data):
    """The NAL units of an Annex B access unit: [(type, bytes after the header)]."""
    out = []
    for part in data.split(b"\x00\x00\x01")[1:]:
        part = part.rstrip(b"\x00")  # the next 4-byte start code's leading zero
        out.append((part[0] & 0x1F, part[1:]))
    return out


def h264_syntax(units):
    """What a browser and our RTP depacketizer need from an H.264 stream: every
    unit starts with an access unit delimiter (the depacketizer recovers at an
    AUD or SPS); the keyframe carries SPS and PPS before its IDR slices; the SPS
    says Constrained Baseline (profile_idc 66 with constraint_set1: the 42e0xx
    or 42c0xx profile-level-id WebRTC browsers negotiate)."""
    for i, (m, data) in enumerate(units):
        types = [t for t, _ in h264_nals(data)]
        assert types and types[0] == 9, f"unit {i}: NAL types {types}, no AUD first"
        assert (5 in types) == bool(m["key"]), f"unit {i}: key {m['key']}, NAL types {types}"
        if m["key"]:
            assert types.index(7) < types.index(8) < types.index(5), \
                f"keyframe {i}: NAL types {types}"
    sps = next(p for t, p in h264_nals(units[0][1]) if t == 7)
    assert sps[0] == 66 and sps[1] & 0x40, \
        f"SPS profile_idc {sps[0]}, constraints {sps[1]:#04x}: not Constrained Baseline"


def quality(enc, kind):
    spec = ENCODERS[enc]
    w, h, fps, rate = pace(enc, "quality")
    target = rate(500)
    src = clip(kind, w, h)
    dump = os.path.join(WORK, f"{enc}-{kind}.units")
    settle = spec.get("settle_s", 0) if kind == "hard" else 0  # the pattern: upper bound only
    out = run([module("capture", "capture-y4m", file=src, fps=fps),
               module("encoder", enc, bitrate=target, fps=fps),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=1000)],
              settle + 5, [(settle, lambda k: k.mod("encoder")["module"] or {})] if settle else ())
    units = read_units(dump)
    gap = flowing(units, out["t0"], out["t_end"], f"{enc} on {kind}")
    assert all(m["format"] == spec["fmt"] for m, _ in units)
    keys = keyframes(units)
    enc_st = next(m for m in out["status"]["modules"] if m["name"] == "encoder")["module"]
    assert keys == [0], f"keyframes at units {keys}: only the first was wanted ({enc_st})"
    # Judged from `settle` s on (the units captured from then), when the spec says so.
    skip = next(i for i, (m, _) in enumerate(units)
                if m["capture_us"] >= (out["t0"] + settle) * 1e6) if settle else 0
    psnr = source_psnr(units, src, f"{enc}-{kind}", w, h, skip)
    if spec["fmt"] == FMT_H264:
        h264_syntax(units)
    skipped = enc_st.get("skipped_over_rate", 0) - \
        (out[settle].get("skipped_over_rate", 0) if settle else 0)
    judged = units[skip:]
    kbps = unit_kbps(judged, fps, skipped)
    assert psnr >= spec["min_psnr"], f"PSNR-Y {psnr:.2f} dB < {spec['min_psnr']}"
    # Over the target by more than 15 % is a fault on any content. Under it is one
    # only on the hard clip, which needs every bit: on the test pattern x265
    # (ultrafast, VBV) has nothing to spend more on and gives 84-96 % of the target
    # at 47 dB (CI saw 84.4 %), which costs the link less and no picture. A floor of
    # half the target still catches a rate given in the wrong unit or per second
    # where per frame was meant.
    low = 0.15 if kind == "hard" else 0.5
    assert -low * target <= kbps - target <= 0.15 * target, \
        f"{kbps:.0f} kbit/s per unit for a {target} kbit/s target at {fps} fps"
    print(f"     {enc} on {kind}, {w}x{h} at {fps} fps: {len(units)} units "
          f"({kept(units):.0%} of the frames captured; longest gap {gap * 1000:.0f} ms) decode, "
          + (f"judged the {len(judged)} from {settle} s on ({enc_st['lost_downstream']} units lost "
             f"downstream): " if settle else "") +
          f"PSNR-Y {psnr:.2f} dB, "
          f"{kbps:.0f} kbit/s per unit for {target} ({kbps / target:.1%}; {skipped} frames "
          f"skipped over the rate), one keyframe")


def live(enc):
    """Live test pattern: a keyframe on request, and the stamps survive."""
    spec = ENCODERS[enc]
    w, h, fps, rate = pace(enc)
    dump = os.path.join(WORK, f"{enc}-live.units")

    def ask_key(k):
        r = k.send("encoder", "keyframe")
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["reply"]

    out = run([module("capture", "capture-testsrc", width=w, height=h, fps=fps),
               module("encoder", enc, bitrate=rate(500), fps=fps),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=1000)], 7,
              [(4, ask_key)])
    reply = out[4]
    units = read_units(dump)
    gap = flowing(units, out["t0"], out["t_end"], f"{enc} live")
    numbers = [m["number"] for m, _ in units]
    keys = keyframes(units)
    assert len(keys) == 2 and keys[0] == 0, f"keyframes at {keys}: want the first and one more"
    assert reply["last_out"] in numbers, reply
    after = numbers.index(reply["last_out"])
    waited = keys[1] - after
    assert 1 <= waited <= spec["delay"] + 1, \
        f"keyframe came {waited} units after the request (delay {spec['delay']} + 1 allowed)"
    yuv = decoded(units, f"{enc}-live", w, h)
    good, wrong = stamps(yuv, units, w, h)
    assert wrong == 0, f"{wrong} stamps disagree with the metadata"
    assert good >= spec.get("min_stamps", 0.99) * len(units), \
        f"only {good} of {len(units)} stamps read"
    lat = sorted(m["encode_us"] for m, _ in units)
    print(f"     {enc} live, {w}x{h} at {fps} fps: {len(units)} units "
          f"({kept(units):.0%} of the frames captured; longest gap {gap * 1000:.0f} ms); "
          f"keyframe {waited} unit(s) after the "
          f"request (in flight {reply['in_flight']}), in "
          f"{units[keys[1]][0]['encode_us'] / 1000:.1f} ms (median unit "
          f"{lat[len(lat) // 2] / 1000:.1f} ms); stamps {good}/{len(units)} equal the metadata")


def intra_refresh(enc):
    """intra_refresh = true with keyframe_interval 1 s: no periodic keyframe, the
    picture refreshed by a sweep of intra blocks instead, so no unit stands out as
    a keyframe does; a requested keyframe is still an IDR (a viewer joins on it).
    Judged from 2 s on (before, a sink that connects late gets recovery keyframes);
    the requested IDR is the same run's measure of what a keyframe weighs."""
    w, h, fps, rate = pace(enc)
    dump = os.path.join(WORK, f"{enc}-intra.units")
    out = run([module("capture", "capture-y4m", file=clip("hard", w, h), fps=fps),
               module("encoder", enc, bitrate=rate(500), fps=fps, keyframe_interval=1,
                      intra_refresh=True),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=1000)], 7,
              [(5, lambda k: k.send("encoder", "keyframe").returncode)])
    assert out[5] == 0, "the keyframe command failed"
    units = read_units(dump)
    flowing(units, out["t0"], out["t_end"], f"{enc} intra refresh")
    enc_st = next(m for m in out["status"]["modules"] if m["name"] == "encoder")["module"]
    assert enc_st["intra_refresh"] is True, enc_st
    decoded(units, f"{enc}-intra", w, h)
    t = [(m["capture_us"] / 1e6 - out["t0"], m["key"], len(d)) for m, d in units]
    before = [(at, key, n) for at, key, n in t if 2 <= at < 4.9]
    after = [(at, key, n) for at, key, n in t if at >= 5]
    assert len(before) >= 2 * fps * 0.5, f"only {len(before)} units from 2 s to 4.9 s"
    assert not any(key for _, key, _ in before), \
        f"keyframes between 2 and 4.9 s (interval 1 s, intra refresh on): {before}"
    asked = [n for _, key, n in after if key]
    assert len(asked) == 1, f"{len(asked)} keyframes after the request: want its IDR only"
    sizes = sorted(n for _, _, n in before)
    median = sizes[len(sizes) // 2]
    print(f"     {enc} intra refresh, {w}x{h} at {fps} fps, keyframe_interval 1 s: no keyframe in "
          f"{len(before)} units over 2.9 s, the largest {sizes[-1] / median:.1f}x the median "
          f"({sizes[-1]} / {median} B); the requested IDR {asked[0] / median:.1f}x ({asked[0]} B); "
          f"all {len(units)} units decode")
    assert sizes[-1] <= 0.5 * asked[0], \
        f"a unit of {sizes[-1]} B against a keyframe of {asked[0]} B: no refresh spread"
    # Where the backend has none, or the value is not a boolean: refused by name.
    for plugin, value, says in (("encoder-x265", True, "encoder-x265 has none"),
                                (enc, "yes", "must be true or false")):
        k = Kernel([module("capture", "capture-testsrc", width=w, height=h, fps=fps),
                    module("encoder", plugin, restart="temporary", intra_refresh=value),
                    module("sink", "test-sink", pattern=False)], name="intra-bad").start(
                        wait_running=False)
        try:
            st, _ = k.wait(lambda s: "intra_refresh" in (k.mod("encoder", s)["last_error"] or ""),
                           30, f"{plugin} refusing intra_refresh = {value!r}")
            assert says in k.mod("encoder", st)["last_error"], k.mod("encoder", st)
        finally:
            k.stop()
            k.cleanup()


def rate_change_and_kill(enc):
    """bitrate 500 -> 250 (scaled to the pace): the next 5 s worth of units (5 x fps,
    however long they take to come) within 20 % of the new target, one decodable
    stream across the change; then kill -9: the encoder is restarted and its first
    unit is a keyframe from which the rest decodes."""
    w, h, fps, rate = pace(enc)
    spec = ENCODERS[enc]
    window = 5 * fps
    dump = os.path.join(WORK, f"{enc}-rate.units")
    k = Kernel([module("capture", "capture-y4m", file=clip("hard", w, h), fps=fps),
                module("encoder", enc, bitrate=rate(500), fps=fps),
                module("sink", "test-sink", pattern=False, dump=dump, dump_frames=2000)],
               name="rate").start()
    try:
        t0 = time.time()
        time.sleep(3)

        def units_in(s):
            return k.mod("sink", s)["module"]["frames"] if k.mod("sink", s)["module"] else 0

        r = k.send("encoder", "bitrate", {"kbps": rate(250)})
        assert r.returncode == 0, r.stderr
        t_sent = time.time()  # the encoder has taken the command: later frames get the new rate
        # Enough units after the change for the window (what a slow machine drops
        # costs time here, never the verdict): the window, the frames in flight and
        # what was already on its way; at least 1 s so the kill is clear of the change.
        at_change = k.status()
        n_sent = units_in(at_change)
        skipped_before = (k.mod("encoder", at_change)["module"] or {}).get("skipped_over_rate", 0)
        at_window, _ = k.wait(lambda s: units_in(s) >= n_sent + window + spec["delay"] + 10,
                              120, f"{window} units after 'bitrate {rate(250)}'")
        skipped_window = ((k.mod("encoder", at_window)["module"] or {})
                          .get("skipped_over_rate", 0) - skipped_before)
        time.sleep(max(0, t_sent + 1 - time.time()))
        st = k.mod("encoder")
        pid = st["pid"]
        t_kill = time.time()
        os.kill(pid, signal.SIGKILL)
        back, _ = k.wait(lambda s: k.mod("encoder", s)["state"] == "running"
                         and k.mod("encoder", s)["pid"] != pid, 10, "encoder back")
        n_back = units_in(back)
        k.wait(lambda s: units_in(s) >= n_back + 2 * (spec["delay"] + 1) + 5, 60,
               "units after the restart")
        t_end = time.time()
        restarted = k.mod("encoder")
    finally:
        k.stop()
        k.check_clean_log()
        k.cleanup()
    how = (f"in place ({st['module']['reconfigured_in_place']}x)"
           if st["module"]["reconfigured_in_place"] else
           f"re-opened in {st['module']['last_reopen_ms']:.1f} ms")
    units = read_units(dump)
    keys = keyframes(units)
    # The restart: the first keyframe captured after the kill (or just before, a
    # frame still on its way); no unit captured after the kill may come before
    # it, since the killed encoder cannot have made one.
    kill_us = t_kill * 1e6
    new = next((i for i in keys if units[i][0]["capture_us"] > kill_us - 0.5e6), None)
    after_kill = next((i for i, (m, _) in enumerate(units) if m["capture_us"] > kill_us), None)
    assert after_kill is not None, "no unit captured after the kill"
    assert new is not None and new <= after_kill, \
        f"the first unit after the restart is not a keyframe (keyframes at {keys}, " \
        f"first unit captured after the kill: {after_kill})"
    jump = units[new][0]["number"] - units[new - 1][0]["number"]
    assert jump >= 2, f"no restart gap in the numbers at unit {new} ({jump})"
    gap = flowing(units, t0, t_end, f"{enc} rate change and kill", restart=new)
    # The rate: 5 s worth of units from the first that has the new rate (the
    # re-open's keyframe where the encoder re-opens, else the first frame
    # captured after the command was taken).
    reopen = [i for i in keys if 0 < i < new]
    assert len(reopen) == (0 if st["module"]["reconfigured_in_place"] else 1), \
        f"keyframes at {keys} (restart at {new}): {how}"
    start = reopen[0] if reopen else next(
        i for i, (m, _) in enumerate(units) if m["capture_us"] >= t_sent * 1e6)
    win = units[start:start + window]
    assert len(win) == window and start + window <= new, (start, len(win), new)
    # Frames the rate guard skipped from the change to the status that showed
    # the window complete (it and up to delay + 10 units more): counted as
    # given to the encoder, which can lower the rate this finds, never raise it.
    skipped = skipped_window
    kbps = unit_kbps(win, fps, skipped)
    target = rate(250)
    assert abs(kbps - target) <= 0.2 * target, \
        f"{kbps:.0f} kbit/s per unit over the {window} units after 'bitrate {target}'"
    decoded(units[:new], f"{enc}-rate", w, h)  # one stream across the change
    decoded(units[new:], f"{enc}-restarted", w, h)  # the new encoder's, from its keyframe
    assert restarted["restarts"] == 1, restarted
    print(f"     {enc}, {w}x{h} at {fps} fps: {kbps:.0f} kbit/s per unit over the {window} "
          f"units after 'bitrate {target}' ({kbps / target:.1%}; {how}; {skipped} skipped over the rate; "
          f"{kept(win):.0%} of the "
          f"frames "
          f"captured); after kill -9 the first unit (after a gap of {jump} numbers) is a "
          f"keyframe and the {len(units) - new} units from it decode; longest other gap "
          f"{gap * 1000:.0f} ms")


def resize(enc):
    """The capture re-negotiates its size: the encoder follows without a restart."""
    w, h, fps, rate = pace(enc)
    sw, sh = w // 2, h // 2
    spec = ENCODERS[enc]
    dump = os.path.join(WORK, f"{enc}-resize.units")
    marks = {}

    def shrink(k):
        marks["pid"] = k.mod("encoder")["pid"]
        r = k.send("capture", "resolution", {"width": sw, "height": sh})
        assert r.returncode == 0, r.stderr

    def small_units(k):
        # Enough units at the new size to show it is followed (the encoder's
        # delay twice over, and some); a slow machine takes longer, that is all.
        st, _ = k.wait(lambda s: (k.mod("sink", s)["module"] or {}).get("width") == sw, 60,
                       "a unit at the new size")
        n = k.mod("sink", st)["module"]["frames"]
        k.wait(lambda s: k.mod("sink", s)["module"]["frames"] >= n + 2 * spec["delay"] + 8, 60,
               "units at the new size")

    out = run([module("capture", "capture-testsrc", width=w, height=h, fps=fps),
               module("encoder", enc, bitrate=rate(500), fps=fps),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=1000)], 5,
              [(2, shrink), (2.01, small_units)])
    units = read_units(dump)
    gap = flowing(units, out["t0"], out["t_end"], f"{enc} resize")
    sizes = [(m["width"], m["height"]) for m, _ in units]
    first_small = sizes.index((sw, sh))
    assert set(sizes[first_small:]) == {(sw, sh)} and set(sizes[:first_small]) == {(w, h)}
    assert units[first_small][0]["key"], "the first unit at the new size is not a keyframe"
    decoded(units[:first_small], f"{enc}-big", w, h)
    small = units[first_small:]
    decoded(small, f"{enc}-small", sw, sh)
    e = next(m for m in out["status"]["modules"] if m["name"] == "encoder")
    assert e["pid"] == marks["pid"] and e["restarts"] == 0, e
    assert e["module"]["last_reopen_why"] == "new frame size", e["module"]
    print(f"     {enc} at {fps} fps: {w}x{h} -> {sw}x{sh} without a restart; {len(small)} units "
          f"at the new size decode, the first a keyframe ({e['module']['last_reopen_ms']:.1f} ms "
          f"re-open; longest gap {gap * 1000:.0f} ms)")


def test_fallback_to_av1():
    """x265 cannot start (an impossible preset): after the restart intensity (5
    restarts, back-offs 0.1-1.6 s) the kernel starts the fallback, rav1e, in its
    place, and AV1 flows (paced for rav1e, see the header)."""
    w, h, fps, rate = pace("encoder-rav1e")
    spec = ENCODERS["encoder-rav1e"]
    dump = os.path.join(WORK, "fallback.units")
    k = Kernel([module("capture", "capture-testsrc", width=w, height=h, fps=fps),
                module("encoder", "encoder-x265", fallback="encoder-rav1e", bitrate=rate(500),
                       fps=fps, preset="no-such-preset"),
                module("sink", "test-sink", pattern=False, dump=dump, dump_frames=100)],
               name="fallback").start(wait_running=False)
    try:
        st, up = k.wait(lambda s: k.mod("encoder", s)["fallback_active"]
                        and k.mod("encoder", s)["state"] == "running", 60, "the fallback running")
        # More units than rav1e holds in flight: frames go in and come out.
        st, took = k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) > spec["delay"] + 4, 60,
                          "AV1 flowing")
        enc = k.mod("encoder", st)
        assert enc["plugin"] == "encoder-rav1e" and enc["configured_plugin"] == "encoder-x265"
        assert enc["restarts"] == 6, enc  # 5 within the intensity, then the fallback
        assert "no-such-preset" in enc["last_error"], enc["last_error"]
        r = subprocess.run([os.path.join(BIN, "outpostctl"), "-c", k.config, "status"],
                           capture_output=True, text=True)
        assert "encoder-rav1e*" in r.stdout and "fallback for encoder-x265" in r.stdout, r.stdout
    finally:
        k.stop()
        k.cleanup()
    units = read_units(dump)
    assert units and all(m["format"] == FMT_AV1 for m, _ in units)
    assert units[0][0]["key"], "the fallback's first unit is not a keyframe"
    decoded(units, "fallback", w, h)
    print(f"     x265 refused ({enc['last_error']}); rav1e running {up:.1f} s after start, "
          f"AV1 flowing {up + took:.1f} s after start ({len(units)} units decode)")


def stamps(yuv, units, w, h, repeats=None):
    """(read, wrong): stamps read back from the decoded pictures that equal the
    units' metadata, and stamps that disagree with it. With `repeats` (a
    list), a picture that shows the previous unit's stamp from a unit of
    under REPEAT_BYTES is put there instead of counted wrong: the encoder
    coded every block as a copy of the last picture (see lost_unit_recovery)."""
    r = subprocess.run([os.path.join(BIN, "stamp-read"), f"{w}x{h}", yuv], capture_output=True,
                       check=True)
    good = wrong = 0
    prev = None
    for s, (m, d) in zip([line.split() for line in r.stdout.decode().splitlines()], units):
        if s[1] != "none":
            if int(s[1]) == m["number"] & 0xFFFFFFFF and int(s[2]) == m["capture_us"] // 1000:
                good += 1
            elif (repeats is not None and prev and len(d) < REPEAT_BYTES and
                  int(s[1]) == prev["number"] & 0xFFFFFFFF and
                  int(s[2]) == prev["capture_us"] // 1000):
                repeats.append((m["number"], len(d)))
            else:
                wrong += 1
        prev = m
    return good, wrong


# A 640x480 unit this small is a picture coded as a copy of the last one:
# the test pattern pans, so any other picture costs kilobytes.
REPEAT_BYTES = 100


def lost_unit_recovery(enc):
    """A unit lost on the way out (the next module too slow: its queue full)
    breaks every later picture: the core must not send what cannot decode, and
    must force a keyframe until one gets through. A sink taking 100 ms a unit
    behind 30 fps loses units; then the source slows to 5 fps, the sink catches
    up and receives what came after the losses. Every unit that arrived must
    decode (ffmpeg's H.265 decoder reports a missing reference; AV1 decoders
    would decode it wrong in silence) and show the stamp of its own frame, and a
    recovery keyframe must have arrived. The core is the same in every encoder:
    x265 (fast, strict decoder) and SVT-AV1 (fast, 1 frame in flight: what was
    inside the encoder when a unit was lost must be skipped) stand for all."""
    dump = os.path.join(WORK, f"{enc}-lost.units")
    k = Kernel([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
                module("encoder", enc, bitrate=500, fps=FPS),
                module("sink", "test-sink", pattern=False, delay_ms=100, dump=dump,
                       dump_frames=2000)], name="lost").start()
    try:
        # The first unit may be lost before the sink is connected (a CI run):
        # that loss is not the one this case is about, and waiting for it alone
        # left the queue short of full when the source slowed down.
        st, _ = k.wait(lambda s: k.mod("sink", s)["frames_in"] > 0
                       and k.mod("encoder", s)["module"], 30, "the sink receiving")
        lost0 = k.mod("encoder", st)["module"]["lost_downstream"]
        k.wait(lambda s: k.mod("encoder", s)["module"]["lost_downstream"] > lost0, 60,
               "a unit lost downstream behind the slow sink")
        time.sleep(2)
        r = k.send("capture", "fps", {"fps": 5})
        assert r.returncode == 0, r.stderr

        def recovered(_):
            units = read_units(dump) if os.path.exists(dump + ".txt") else []
            keys = keyframes(units)
            return len(keys) >= 2 and len(units) >= keys[-1] + 10

        k.wait(recovered, 60, "a recovery keyframe and 10 units after it at the sink")
        st = k.mod("encoder")["module"]
    finally:
        k.stop()
        k.check_clean_log()
        k.cleanup()
    units = read_units(dump)
    assert st["lost_downstream"] > 0 and st["keyframes"]["recovery"] >= 1, st
    keys = keyframes(units)
    assert keys[0] == 0, "the first unit that arrived is not a keyframe"
    if ENCODERS[enc]["delay"]:
        assert st["skipped_undecodable"] > 0, f"nothing in flight was skipped: {st}"
    yuv = decoded(units, f"{enc}-lost")  # not one unit that refers to a lost one
    # Seen twice in 41 runs: a 52-byte x265 unit showing the previous frame's
    # stamp, its neighbours kilobytes. Every block a copy of the last picture:
    # by all signs the encoder's rate control at its quantizer ceiling after
    # ~50 forced keyframes in 3 s (~5.5 KB each at 500 kbit/s) drained its VBV
    # (inferred from the size; not reproduced in 28 runs since), not a unit
    # out of place. A picture of any other frame is still counted wrong.
    repeats = []
    good, wrong = stamps(yuv, units, W, H, repeats)
    assert wrong == 0, f"{wrong} stamps disagree with the metadata"
    assert len(repeats) <= 2, f"{len(repeats)} pictures repeat the last one: {repeats}"
    assert good + len(repeats) >= ENCODERS[enc].get("min_stamps", 0.99) * len(units), \
        f"only {good} of {len(units)} stamps read"
    print(f"     {enc} behind a sink of 100 ms a unit: {st['lost_downstream']} units lost "
          f"downstream, {st['skipped_undecodable']} undecodable ones not sent, "
          f"{st['keyframes']['recovery']} recovery keyframes forced; the {len(units)} units "
          f"that arrived ({len(keys)} keyframes) decode as one stream, stamps {good}/{len(units)}"
          + (f", {len(repeats)} repeating the last picture (units of {[b for _, b in repeats]} B)"
             if repeats else ""))


def lan_profile(enc):
    """device.profile = "lan" (one line): the test pattern captured at 60 fps,
    coded at 60 fps with the LAN's defaults (20000 kbit/s, the fastest speed
    that codes every block: libaom's cpu-used 10 leaves stale blocks),
    near-lossless: PSNR-Y >= 45 dB (issue 15); every unit decodes."""
    src = clip("testsrc")
    dump = os.path.join(WORK, f"{enc}-lan.units")
    # The pattern's file at 60 fps, as the LAN's camera would give it (the
    # capture of a file keeps the file's rate unless told).
    out = run([module("capture", "capture-y4m", file=src, fps=60),
               module("encoder", enc),
               module("sink", "test-sink", pattern=False, dump=dump, dump_frames=1000)], 4,
              profile="lan")
    units = read_units(dump)
    flowing(units, out["t0"], out["t_end"], f"{enc} on a LAN")
    st = next(m for m in out["status"]["modules"] if m["name"] == "encoder")["module"]
    assert (st["target_fps"], st["target_kbps"], st["speed"]) == (60, 20000, 9), st
    psnr = source_psnr(units, src, f"{enc}-lan", W, H)
    assert psnr >= 45.0, f"PSNR-Y {psnr:.2f} dB < 45 on a LAN"
    kbps = unit_kbps(units, 60, st.get("skipped_over_rate", 0))
    # The test pattern's own capture at 60 fps on a LAN: capture-testsrc's default.
    k = Kernel([module("capture", "capture-testsrc"),
                module("sink", "test-sink", pattern=False)], name="lan", profile="lan").start()
    try:
        k.wait(lambda s: (k.mod("capture", s).get("module") or {}).get("fps"), 10,
               "the capture's status")
        fps = k.mod("capture")["module"]["fps"]
    finally:
        k.stop()
        k.check_clean_log()
        k.cleanup()
    assert fps == 60, f"capture-testsrc at {fps} fps on a LAN"
    print(f"     {enc} with profile \"lan\": {st['target_fps']} fps at {st['target_kbps']} "
          f"kbit/s; {len(units)} units decode, PSNR-Y {psnr:.2f} dB at {kbps:.0f} kbit/s per "
          f"unit ({kept(units):.0%} of the frames captured); capture-testsrc at {fps} fps")


def speed_auto(enc):
    """speed "auto" (issue 15: the encoder's real-time settings chosen by the
    measured time per frame, modules/encoder-common/speed_follow.h): with a
    budget no frame can meet (1 ms) the encoder goes a step faster at each
    judgement, to its fastest clean speed; with one every frame meets by far
    (1000 ms), a step slower, to its slowest auto speed; every unit decodes
    across the changes. Machine-independent: no 640x480 frame takes under 1
    ms, none 500 ms (half the budget)."""
    seen = []
    for budget, want in ((1, 9), (1000, 6)):
        dump = os.path.join(WORK, f"{enc}-auto{budget}.units")
        # Waited for, not timed: each step takes a judgement (>= 1 s and 20
        # frames), and a slower machine makes fewer frames a second.
        out = run([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
                   module("encoder", enc, bitrate=500, speed="auto", encode_budget_ms=budget),
                   module("sink", "test-sink", pattern=False, dump=dump, dump_frames=1000)], 2,
                  [(0, lambda k, want=want: k.wait(
                      lambda s: (k.mod("encoder", s).get("module") or {}).get("speed") == want,
                      30, f"speed {want}"))])
        units = read_units(dump)
        flowing(units, out["t0"], out["t_end"], f"{enc} at speed auto")
        st = next(m for m in out["status"]["modules"] if m["name"] == "encoder")["module"]
        auto = st["speed_auto"]
        assert (auto["lo"], auto["hi"], auto["budget_ms"]) == (6, 9, budget), auto
        assert st["speed"] == want, f"speed {st['speed']} with a budget of {budget} ms: {auto}"
        decoded(units, f"{enc}-auto{budget}")
        seen.append(f"budget {budget} ms -> speed {st['speed']} ({auto['faster']} faster, "
                    f"{auto['slower']} slower; encode p99 {st.get('encode_ms_p99')} ms), "
                    f"{len(units)} units decode")
    print(f"     {enc} speed \"auto\" from 8: " + "; ".join(seen))


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
    if "encoder-x264" in only:
        cases.append(case(intra_refresh, "encoder-x264"))
    if "encoder-aom" in only:
        cases.append(case(lan_profile, "encoder-aom"))
        cases.append(case(speed_auto, "encoder-aom"))
    cases.append(test_fallback_to_av1)
    # x265 (fast, strict decoder) and SVT-AV1 (one frame in flight) stand for
    # every encoder on the same core.
    lost = ["encoder-svtav1", "encoder-x265"]
    for enc in lost:
        if enc in only:
            cases.append(case(lost_unit_recovery, enc))
    pick = os.environ.get("OUTPOST_CASES")  # e.g. OUTPOST_CASES=resize, while working on one
    run_cases([c for c in cases if not pick or pick in c.__name__])
finally:
    shutil.rmtree(WORK, ignore_errors=True)
