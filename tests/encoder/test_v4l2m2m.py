"""encoder-v4l2m2m where there is no hardware encoder (this machine has no
/dev/video* at all): the module must fail to start, saying why, so that the
kernel's fallback gives AV1 - as configs/v4l2m2m.cfg sets it up for a
Raspberry Pi or a phone SoC. What it does on a real stateful encoder is
tests/vivid's job (vicodec in a VM).

- fallback: capture-testsrc -> encoder-v4l2m2m (fallback encoder-aom) -> sink:
  AV1 flowing within 10 s of the start (the restart intensity, 5 restarts with
  back-offs of 0.1-1.6 s, is ~3.1 s of it), every unit decodes, and status says
  why the configured plugin is not the one running (last_error, the table's
  "fallback for").
- named device that is no encoder (/dev/null): the error names it.
- a misspelt codec: the setting is named."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kernel"))  # harness, media
from harness import BIN, Kernel, module, run_cases  # noqa: E402
from media import FMT_AV1, decode, read_units, write_stream  # noqa: E402

W, H, FPS = 640, 480, 30
WORK = tempfile.mkdtemp(prefix="outpost-m2m-", dir="/dev/shm")


def test_fallback_to_av1():
    dump = os.path.join(WORK, "fallback.units")
    k = Kernel([module("capture", "capture-testsrc", width=W, height=H, fps=FPS),
                module("encoder", "encoder-v4l2m2m", fallback="encoder-aom", bitrate=500, fps=FPS),
                module("sink", "test-sink", pattern=False, dump=dump, dump_frames=60)],
               name="m2m-fallback")
    t0 = time.monotonic()
    k.start(wait_running=False)
    try:
        # The promise is AV1 within 10 s: waited for with that bound, from the start.
        st, _ = k.wait(lambda s: k.mod("encoder", s)["fallback_active"]
                       and k.mod("encoder", s)["state"] == "running"
                       and (k.mod("sink", s)["frames_in"] or 0) >= 5, 10 - (time.monotonic() - t0),
                       "AV1 units from the fallback")
        took = time.monotonic() - t0
        enc = k.mod("encoder", st)
        assert enc["plugin"] == "encoder-aom" and enc["configured_plugin"] == "encoder-v4l2m2m"
        assert enc["restarts"] == 6, enc  # 5 within the intensity, then the fallback
        why = enc["last_error"]
        assert "no device" in why and "memory-to-memory" in why and "/dev/video" in why, why
        r = subprocess.run([os.path.join(BIN, "outpostctl"), "-c", k.config, "status"],
                           capture_output=True, text=True)
        assert "encoder-aom*" in r.stdout and "fallback for encoder-v4l2m2m" in r.stdout, r.stdout
        log = k.read_log()
        assert log.count("encoder-v4l2m2m: no device:") >= 6, log
    finally:
        k.stop()
        k.cleanup()
    units = read_units(dump)
    assert len(units) >= 5 and all(m["format"] == FMT_AV1 for m, _ in units), len(units)
    assert units[0][0]["key"], "the fallback's first unit is not a keyframe"
    stream, yuv = os.path.join(WORK, "fallback.ivf"), os.path.join(WORK, "fallback.yuv")
    write_stream(stream, units)
    rc, err = decode(stream, FMT_AV1, yuv)
    assert rc == 0 and not err, err[:500]
    assert os.path.getsize(yuv) == len(units) * W * H * 3 // 2
    print(f"     AV1 flowing {took:.1f} s after start ({len(units)} units decode); "
          f"status: last error \"{why}\"")


def refused(settings, want, name):
    """The module alone, with these settings: init fails, and status says `want`."""
    k = Kernel([module("encoder", "encoder-v4l2m2m", restart="temporary", **settings)], name=name)
    k.start(wait_running=False)
    try:
        st, _ = k.wait(lambda s: all(w in (k.mod("encoder", s)["last_error"] or "") for w in want),
                       10, f"the error naming {want}")
        return k.mod("encoder", st)["last_error"]
    finally:
        k.stop()
        k.cleanup()


def test_not_an_encoder():
    why = refused({"device": "/dev/null"}, ["no device", "/dev/null", "not a V4L2 device"],
                  "m2m-null")
    print(f"     {why}")


def test_bad_codec():
    why = refused({"codec": "vp9"}, ["settings.codec", "\"h264\""], "m2m-codec")
    print(f"     {why}")


try:
    run_cases([test_fallback_to_av1, test_not_an_encoder, test_bad_codec])
finally:
    shutil.rmtree(WORK, ignore_errors=True)
