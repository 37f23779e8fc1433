"""capture-y4m: frames out equal the file's frames bit for bit, at the file's
rate, looping; a wrong or truncated file is a clear error."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "kernel"))
from harness import Kernel, module, run_cases  # noqa: E402
from media import make_clip, read_y4m  # noqa: E402


def make_y4m(path, size="320x240", frames=30, pix="yuv420p"):
    make_clip(path, "smooth", size=size, frames=frames, pix=pix)


def y4m_frames(path):
    return read_y4m(path)[2]


def read_dump(path):
    meta = [line.split() for line in open(path + ".txt")]
    raw = open(path, "rb").read()
    out, pos = [], 0
    for m in meta:
        size = int(m[6])
        out.append((int(m[0]), int(m[1]), int(m[2]), int(m[3]), raw[pos:pos + size]))
        pos += size
    return out


def kernel_for(y4m, dump):
    return Kernel([module("capture", "capture-y4m", file=y4m),
                   module("sink", "test-sink", pattern=False, dump=dump, dump_frames=75)],
                  name="y4m")


def test_frames_equal_the_file_bit_for_bit():
    tmp = tempfile.mkdtemp(prefix="outpost-y4m-", dir="/dev/shm")
    src, dump = os.path.join(tmp, "clip.y4m"), os.path.join(tmp, "dump.raw")
    make_y4m(src)
    k = kernel_for(src, dump)
    try:
        k.start()
        k.wait(lambda s: (k.mod("sink", s)["frames_in"] or 0) >= 75, 10, "75 frames at the sink")
        want = y4m_frames(src)
        got = read_dump(dump)
        assert len(got) == 75, len(got)
        numbers = [g[0] for g in got]
        # Numbers count frame intervals and the file plays in real time: a frame's
        # number says where in the file it is. Frames made before the sink connected
        # are dropped at the source (counted, not queued), so the sink may start
        # anywhere in the file; from there every frame must be the file's, bit for bit.
        assert all(b > a for a, b in zip(numbers, numbers[1:])), numbers
        first = want.index(got[0][4])
        for num, _, w, h, data in got:
            assert (w, h) == (320, 240), (w, h)
            i = (first + num - numbers[0]) % len(want)
            assert data == want[i], f"frame {num} differs from file frame {i}"
        span = (got[-1][1] - got[0][1]) / 1e6
        assert abs(span - 74 / 30) < 0.25, f"75 frames spanned {span:.3f} s, want {74 / 30:.3f}"
        st = k.mod("capture")["module"]
        assert st["loops"] >= 2 and st["frames_in_file"] == 30, st
        print(f"     75 frames = file frames 0-29 looped, bit for bit; {span:.3f} s at 30 fps; "
              f"copy {st['copy_us_mean']:.0f} us/frame (320x240)")
    finally:
        k.stop()
        k.check_clean_log()
        k.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _refused(make, want):
    tmp = tempfile.mkdtemp(prefix="outpost-y4m-", dir="/dev/shm")
    src = os.path.join(tmp, "bad.y4m")
    make(src)
    k = kernel_for(src, os.path.join(tmp, "dump.raw"))
    try:
        k.start(wait_running=False)
        st, _ = k.wait(lambda s: k.mod("capture", s)["restarts"] >= 1, 5, "capture refused")
        cap = k.mod("capture", st)
        assert cap["state"] != "running", cap
        assert want in cap["last_error"] and src in cap["last_error"], cap
        assert want in k.read_log()
        print(f"     refused: {cap['last_error']}")
    finally:
        k.stop()
        k.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_truncated_file_is_refused():
    def make(p):
        make_y4m(p)
        size = os.path.getsize(p)
        with open(p, "r+b") as f:
            f.truncate(size - 1000)
    _refused(make, "frame 29 truncated")


def test_not_a_y4m_file_is_refused():
    _refused(lambda p: open(p, "w").write("this is not video\n" * 10), "not a YUV4MPEG2 file")


def test_444_is_refused():
    _refused(lambda p: make_y4m(p, frames=2, pix="yuv444p"), "4:2:0 only")


run_cases([test_frames_equal_the_file_bit_for_bit, test_truncated_file_is_refused,
           test_not_a_y4m_file_is_refused, test_444_is_refused])
