#!/usr/bin/env bash
# Encoders: speed vs ffmpeg (issue 4). Each encoder module, through bench_encode
# (a minimal fake host), against ffmpeg's own librav1e / libx265 / libx264 wrapper at the
# same settings on the same y4m clip, in this one run; each figure is the median
# of REPEATS runs, ours and ffmpeg's interleaved so that a busy moment on the
# machine hits both sides alike.
#   tools/bench/encoders.sh [build dir=build-bench]
# Environment: REPEATS (3), KBPS (500), CLIP_SECONDS (10), SIZE (640x480), FPS (30).
#
# Settings, identical on both sides (modules/encoder-rav1e/rav1e.c, encoder-x265/x265.c,
# encoder-x264/x264.c with the core's defaults: keyframe_interval 300 s, speed 10, preset
# ultrafast (x265) / superfast (x264), tiles and threads 0 = library default):
# - rav1e: low_latency, rdo_lookahead_frames 1, bitrate mode with the quantizer
#   ceiling at 255, reservoir_frame_delay 30, key/min key interval 300 s, tiles as
#   the module picks them (1 below 1280 wide), threads left to rav1e (ffmpeg passes
#   its thread_count, 0 = auto, as the module leaves it).
# - x265: ultrafast + zerolatency, ABR with VBV max = buffer = bitrate, keyint 300 s,
#   no scene cut, closed GOP, repeated headers, log level error. frame-threads=1
#   is explicit because ffmpeg overwrites zerolatency's frameNumThreads=1 with its
#   thread_count (0 = auto = 2 here, a frame of delay) while the module keeps it.
# - x264: superfast + zerolatency (sliced threads, count auto on both sides: 2 slices
#   a frame here in either stream), baseline profile, ABR with VBV max = buffer =
#   bitrate, keyint 300 s, no scene cut, repeated headers, AUDs.
# What still differs is signalling only: ffmpeg writes the SAR, chroma location
# and (AV1) colour description from the y4m header, ffmpeg's AV1 packets
# keep their 2-byte temporal delimiters, and its x264 stream keeps the ~700-byte
# version SEI that the module drops (once per stream).
#
# ffmpeg's figures: -benchmark's rtime and utime+stime of the whole transcode
# (encoder open and flush included), minus the same for a decode-only run
# (`ffmpeg -i clip.y4m -f null -`: y4m read + rawvideo decode + null muxer), so
# that the rest is the encoder and its wrapper. Ours: bench_encode times
# on_frame for every frame plus destroy, per coded unit out.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bench}
REPEATS=${REPEATS:-3}
KBPS=${KBPS:-500}
SECS=${CLIP_SECONDS:-10}
SIZE=${SIZE:-640x480}
FPS=${FPS:-30}
BENCH=$BUILD/bin/bench_encode
for f in "$BENCH" "$BUILD/modules/encoder-rav1e.so" "$BUILD/modules/encoder-x265.so" \
  "$BUILD/modules/encoder-x264.so"; do
  [[ -e $f ]] || {
    echo "encoders.sh: $f missing: build $BUILD first (tools/bench/run does)" >&2
    exit 1
  }
done
command -v ffmpeg >/dev/null || {
  echo "encoders.sh: ffmpeg not found" >&2
  exit 1
}

# tmpfs: reading a 130 MB clip from disk would be timed on ffmpeg's side only.
TMP=$(mktemp -d /dev/shm/outpost-bench-enc.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

WIDTH=${SIZE%x*}
HEIGHT=${SIZE#*x}
KEYINT=$((300 * FPS))                   # keyframe_interval 300 s, in frames
TILES=$((WIDTH * HEIGHT >= 640 * 360 ? 2 : 1)) # what encoder-rav1e picks with tiles=0
FRAMES=$((SECS * FPS))
declare -A CLIPS=(
  # motion everywhere and fresh noise in every frame: the worst case for the rate control
  [hard]="testsrc2=size=$SIZE:rate=$FPS,noise=alls=12:allf=t"
  # softer, like a camera: optics blur and a little sensor noise
  [camera]="testsrc2=size=$SIZE:rate=$FPS,gblur=sigma=1.2,noise=alls=3:allf=t"
)
for c in hard camera; do
  ffmpeg -v error -y -f lavfi -i "${CLIPS[$c]}" -frames:v "$FRAMES" -pix_fmt yuv420p "$TMP/$c.y4m"
done

RAV1E_PARAMS="speed=10:low_latency=true:rdo_lookahead_frames=1:quantizer=255"
RAV1E_PARAMS+=":reservoir_frame_delay=30:key_frame_interval=$KEYINT"
RAV1E_PARAMS+=":min_key_frame_interval=$KEYINT:tiles=$TILES"
X265_PARAMS="bitrate=$KBPS:vbv-maxrate=$KBPS:vbv-bufsize=$KBPS:keyint=$KEYINT:scenecut=0"
X265_PARAMS+=":open-gop=0:repeat-headers=1:frame-threads=1:log-level=error"
X264_PARAMS="bitrate=$KBPS:vbv-maxrate=$KBPS:vbv-bufsize=$KBPS:keyint=$KEYINT:scenecut=0"
X264_PARAMS+=":repeat-headers=1:aud=1"
ff_args() { # encoder -> ffmpeg's encoder options
  case $1 in
  rav1e) echo "-threads 0 -c:v librav1e -b:v ${KBPS}k -rav1e-params $RAV1E_PARAMS" ;;
  x265) echo "-threads 0 -c:v libx265 -preset ultrafast -tune zerolatency -x265-params $X265_PARAMS" ;;
  x264) echo "-threads 0 -c:v libx264 -preset superfast -tune zerolatency -profile:v baseline -x264-params $X264_PARAMS" ;;
  esac
}

# ffmpeg -benchmark -> "rtime cpu frames kB" (seconds, seconds, count, KiB)
ff_run() {
  local clip=$1
  shift
  ffmpeg -hide_banner -nostdin -nostats -benchmark -i "$clip" "$@" -f null - 2>&1 |
    awk '/^bench: utime=/ { for (i = 2; i <= 4; i++) { split($i, kv, "="); t[kv[1]] = kv[2] + 0 } }
         /^frame=/ { f = $0; sub(/^frame= */, "", f); split(f, a, " "); frames = a[1] }
         /^video:/ { kb = $1; sub(/^video:/, "", kb); sub(/kB.*/, "", kb) }
         END { printf "%f %f %d %d\n", t["rtime"], t["utime"] + t["stime"], frames, kb }'
}
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared with whatever else runs)"
ROWS=()
for c in hard camera; do
  clip=$TMP/$c.y4m
  for enc in rav1e x265 x264; do
    o_fps=() o_cpu=() o_kbps=() f_fps=() f_cpu=() f_kbps=()
    for ((r = 0; r < REPEATS; r++)); do
      line=$("$BENCH" "$BUILD/modules/encoder-$enc.so" "$clip" "$KBPS" 2>"$TMP/err") ||
        { cat "$TMP/err" >&2; exit 1; }
      o_fps+=("$(field fps <<<"$line")")
      o_cpu+=("$(field cpu_ms_per_frame <<<"$line")")
      o_kbps+=("$(field kbps <<<"$line")")
      # shellcheck disable=SC2046 # ff_args is a list of words on purpose
      read -r e_rt e_cpu e_frames e_kb < <(ff_run "$clip" $(ff_args "$enc"))
      read -r d_rt d_cpu _ _ < <(ff_run "$clip")
      ((e_frames > 0)) || { echo "encoders.sh: ffmpeg $enc failed on $clip" >&2; exit 1; }
      f_fps+=("$(awk -v n="$e_frames" -v a="$e_rt" -v b="$d_rt" 'BEGIN { print n / (a - b) }')")
      f_cpu+=("$(awk -v n="$e_frames" -v a="$e_cpu" -v b="$d_cpu" 'BEGIN { print (a - b) * 1000 / n }')")
      f_kbps+=("$(awk -v kb="$e_kb" -v n="$e_frames" -v fps="$FPS" 'BEGIN { print kb * 1024 * 8 / 1000 / (n / fps) }')")
      echo "  $c $enc run $((r + 1)): ${line} | ffmpeg frames=$e_frames rtime=$e_rt cpu=$e_cpu decode-only rtime=$d_rt cpu=$d_cpu" >&2
    done
    ROWS+=("$(awk -v c="$c" -v e="$enc" -v of="$(median "${o_fps[@]}")" -v ff="$(median "${f_fps[@]}")" \
      -v oc="$(median "${o_cpu[@]}")" -v fc="$(median "${f_cpu[@]}")" \
      -v ok="$(median "${o_kbps[@]}")" -v fk="$(median "${f_kbps[@]}")" \
      'BEGIN { printf "| %-6s | %-5s | %8.1f | %10.1f | %9.2f | %17.2f | %19.2f | %9.2f | %9.0f | %11.0f |\n",
               c, e, of, ff, of / ff, oc, fc, fc / oc, ok, fk }')")
  done
done

echo
echo "Encoders vs ffmpeg, $SIZE at $FPS fps, $SECS s, $KBPS kbit/s, median of $REPEATS runs"
echo "(ratios >= 1.0: ours at least as fast / at most as much CPU as ffmpeg)"
echo "| clip   | enc   | ours fps | ffmpeg fps | fps ratio | ours CPU ms/frame | ffmpeg CPU ms/frame | CPU ratio | kbps ours | kbps ffmpeg |"
echo "|--------|-------|----------|------------|-----------|-------------------|---------------------|-----------|-----------|-------------|"
printf '%s\n' "${ROWS[@]}"
echo "fps ratio = ours/ffmpeg; CPU ratio = ffmpeg/ours; ffmpeg = whole run minus a decode-only run."
