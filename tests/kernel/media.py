"""Media helpers for tests: clips, coded streams, decoding and PSNR with ffmpeg
(an independent decoder: libdav1d for AV1, ffmpeg's hevc for H.265, its h264
for H.264)."""
import os
import re
import struct
import subprocess

FMT_I420, FMT_AV1, FMT_H265, FMT_H264 = 1, 100, 101, 102
TD = b"\x12\x00"  # an AV1 temporal delimiter OBU: RTP drops it, files want it back


def make_clip(path, kind="hard", size="640x480", rate=30, seconds=10, frames=None,
              pix="yuv420p"):
    """hard: a moving test pattern seen as a camera sees it: lens softness and
    fresh sensor noise every frame (motion + noise). Calibrated with ffmpeg's own
    librav1e/libx265 at our live settings, 500 kbit/s: 35.9 / 36.5 dB PSNR-Y,
    next to the 35.5 / 34.1 measured on a camera clip. Stronger noise (alls >= 10)
    takes both libraries under 33 dB whoever drives them."""
    src = {"hard": f"testsrc2=size={size}:rate={rate},gblur=sigma=0.8,noise=alls=6:allf=t",
           "smooth": f"testsrc2=size={size}:rate={rate}"}[kind]
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-frames:v",
                    str(frames or rate * seconds), "-pix_fmt", pix, path], check=True)


def read_y4m(path):
    """(width, height, [frame bytes])"""
    data = open(path, "rb").read()
    head, rest = data.split(b"\n", 1)
    tok = {t[:1]: t[1:] for t in head.split()[1:]}
    w, h = int(tok[b"W"]), int(tok[b"H"])
    size = w * h * 3 // 2
    frames, pos = [], 0
    while pos < len(rest):
        eol = rest.index(b"\n", pos)
        frames.append(rest[eol + 1:eol + 1 + size])
        pos = eol + 1 + size
    return w, h, frames


def write_y4m(path, w, h, frames, rate=30):
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{rate}:1 Ip A1:1 C420jpeg\n".encode())
        for fr in frames:
            f.write(b"FRAME\n" + fr)


def read_units(dump):
    """The sink's dump: [(meta dict, bytes)] in arrival order."""
    meta = [line.split() for line in open(dump + ".txt")]
    raw = open(dump, "rb").read()
    out, pos = [], 0
    for m in meta:
        size = int(m[6])
        if pos + size > len(raw):
            break  # the sink was writing its last unit
        out.append(({"number": int(m[0]), "capture_us": int(m[1]), "width": int(m[2]),
                     "height": int(m[3]), "format": int(m[4]), "key": int(m[5]) & 1,
                     "size": size, "encode_us": int(m[8]) if len(m) > 8 else 0},
                    raw[pos:pos + size]))
        pos += size
    return out


def write_stream(path, units):
    """AV1 units -> IVF (temporal delimiters put back); H.265, H.264 -> Annex B."""
    fmt = units[0][0]["format"]
    w, h = units[0][0]["width"], units[0][0]["height"]
    with open(path, "wb") as f:
        if fmt == FMT_AV1:
            f.write(b"DKIF" + struct.pack("<HHIHHIIII", 0, 32, 0x31305641, w, h, 30, 1,
                                           len(units), 0))
            for i, (_, data) in enumerate(units):
                f.write(struct.pack("<IQ", len(data) + 2, i) + TD + data)
        else:
            for _, data in units:
                f.write(data)


def decode(stream, fmt, out_yuv):
    """Decodes to raw I420 (fmt None: a container ffmpeg recognises, e.g. the MP4
    of janus-pp-rec); returns (ffmpeg's exit code, its complaints)."""
    dec = ["-c:v", "libdav1d"] if fmt == FMT_AV1 else []
    demux = [] if fmt is None else ["-f", {FMT_AV1: "ivf", FMT_H265: "hevc",
                                           FMT_H264: "h264"}[fmt]]
    r = subprocess.run(["ffmpeg", "-v", "error", "-y"] + demux + dec + ["-i", stream, "-f",
                       "rawvideo", "-pix_fmt", "yuv420p", "-fps_mode", "passthrough", out_yuv],
                       capture_output=True, text=True)
    return r.returncode, r.stderr.strip()


def read_stamps(yuv, w, h):
    """The test pattern's stamp of each raw I420 frame, by the C reader
    (build/bin/stamp-read): a list of (frame number, capture ms) or None."""
    from harness import BIN  # media.py stays importable without a build
    out = subprocess.run([os.path.join(BIN, "stamp-read"), f"{w}x{h}", yuv], check=True,
                         capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()]  # "index frame ms" or "index none"
    return [(int(r[1]), int(r[2])) if len(r) == 3 else None for r in rows]


def psnr_y(a_yuv, b_yuv, w, h):
    """Mean PSNR of the luma planes of two raw I420 files (ffmpeg's psnr filter)."""
    args = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}"]
    r = subprocess.run(["ffmpeg", "-hide_banner"] + args + ["-i", a_yuv] + args +
                       ["-i", b_yuv, "-lavfi", "[0][1]psnr", "-f", "null", "-"],
                       capture_output=True, text=True, check=True)
    m = re.search(r"PSNR y:([0-9.]+|inf)", r.stderr)
    return float(m.group(1)) if m else None


def kbps(units, fps=30):
    return sum(len(d) for _, d in units) * 8 / 1000 / (len(units) / fps)
