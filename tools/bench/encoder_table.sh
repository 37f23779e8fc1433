#!/usr/bin/env bash
# All encoder modules side by side (issue 7), in one run, on the same clips:
# 640x480 and 1280x720, 250 and 500 kbit/s, each module through bench_encode (a
# minimal fake host, unpaced, the module's own default settings: what a device
# runs). Per row: fps and CPU ms per frame (median of REPEATS runs, the
# encoders interleaved so that a busy moment hits them alike), the encoder's
# frame delay (frames fed after a frame before its unit came out), PSNR-Y and
# SSIM (Y) of the decoded stream against the clip (ffmpeg: libdav1d for AV1,
# its hevc decoder for H.265, h264 for H.264), the achieved rate and the peak over any 1 s.
#   tools/bench/encoder_table.sh [build dir=build-bench]
# Environment: REPEATS (3), CLIP_SECONDS (10), FPS (30), SIZES ("640x480 1280x720"),
# RATES ("250 500"), ENCODERS ("rav1e x265 x264 svtav1 aom").
# The clip is the tests' "hard" one (tests/kernel/media.py): a moving test
# pattern seen as a camera sees it, lens softness and fresh sensor noise in
# every frame.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build-bench}
REPEATS=${REPEATS:-3}
SECS=${CLIP_SECONDS:-10}
FPS=${FPS:-30}
SIZES=${SIZES:-640x480 1280x720}
RATES=${RATES:-250 500}
ENCODERS=${ENCODERS:-rav1e x265 x264 svtav1 aom}
BENCH=$BUILD/bin/bench_encode
for f in "$BENCH" $(for e in $ENCODERS; do echo "$BUILD/modules/encoder-$e.so"; done); do
  [[ -e $f ]] || {
    echo "encoder_table.sh: $f missing: build $BUILD first (tools/bench/run does)" >&2
    exit 1
  }
done

TMP=$(mktemp -d /dev/shm/outpost-bench-table.XXXXXX) # tmpfs: file reads are not timed
trap 'rm -rf "$TMP"' EXIT

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
# decoded stream vs clip -> "psnr_y ssim_y"; frames paired by index (setpts=N), up
# to the shorter (an encoder with frames in flight delivers fewer units), the clip's
# frames without a unit (STREAM.skipped, by bench_encode: the rate guard's) left out.
judge() {
  local stream=$1 clip=$2 dec=() sel=""
  if [[ -s $stream.skipped ]]; then
    sel="select='not($(sed 's/.*/eq(n,&)/' "$stream.skipped" | paste -sd+))',"
  fi
  case $stream in
  *.ivf) dec=(-c:v libdav1d) ;;
  *.h264) dec=(-f h264) ;;
  *) dec=(-f hevc) ;;
  esac
  ffmpeg -hide_banner -nostdin "${dec[@]}" -i "$stream" -i "$clip" -lavfi \
    "[0]settb=1/$FPS,setpts=N,split[a0][a1];[1]${sel}settb=1/$FPS,setpts=N,split[b0][b1];
     [a0][b0]psnr=shortest=1;[a1][b1]ssim=shortest=1" -f null - 2>&1 |
    awk '/PSNR y:/ { sub(/.*PSNR y:/, ""); p = $1 } /SSIM Y:/ { sub(/.*SSIM Y:/, ""); s = $1 }
         END { printf "%s %s\n", p, s }'
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared with whatever else runs)"
ROWS=()
for size in $SIZES; do
  clip=$TMP/hard-$size.y4m
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=$size:rate=$FPS,gblur=sigma=0.8,noise=alls=6:allf=t" \
    -frames:v $((SECS * FPS)) -pix_fmt yuv420p "$clip"
  for kbps in $RATES; do
    declare -A fps=() cpu=() line=()
    for ((r = 0; r < REPEATS; r++)); do
      for enc in $ENCODERS; do
        ext=ivf
        [[ $enc == x26? ]] && ext=h${enc#x}
        out=()
        ((r == 0)) && out=("$TMP/$enc.$ext") # the quality run; writing costs ~0.1 % of the time
        l=$("$BENCH" "$BUILD/modules/encoder-$enc.so" "$clip" "$kbps" "${out[@]}" 2>"$TMP/err") ||
          { cat "$TMP/err" >&2; exit 1; }
        echo "  $size $kbps $enc run $((r + 1)): $l" >&2
        fps[$enc]+=" $(field fps <<<"$l")"
        cpu[$enc]+=" $(field cpu_ms_per_frame <<<"$l")"
        ((r == 0)) && line[$enc]=$l
      done
    done
    for enc in $ENCODERS; do
      ext=ivf
      [[ $enc == x26? ]] && ext=h${enc#x}
      read -r psnr ssim < <(judge "$TMP/$enc.$ext" "$clip")
      l=${line[$enc]}
      # shellcheck disable=SC2086 # the lists of figures are words on purpose
      ROWS+=("$(printf '| %-9s | %4s | %-6s | %6.1f | %12.2f | %5s | %6.2f | %6.4f | %8.0f | %8.0f |' \
        "$size" "$kbps" "$enc" "$(median ${fps[$enc]})" "$(median ${cpu[$enc]})" \
        "$(field delay <<<"$l")" "$psnr" "$ssim" "$(field kbps <<<"$l")" "$(field peak_kbps <<<"$l")")")
    done
    unset fps cpu line
  done
done

echo
echo "Encoder modules side by side: hard clip, $SECS s at $FPS fps, unpaced, median of $REPEATS runs"
echo "| size      | kbps | enc    |    fps | CPU ms/frame | delay | PSNR-Y | SSIM-Y | kbps out | peak 1 s |"
echo "|-----------|------|--------|--------|--------------|-------|--------|--------|----------|----------|"
printf '%s\n' "${ROWS[@]}"
echo "CPU: user+sys of the whole process (the library's threads included) per unit out;"
echo "delay: frames in flight; peak 1 s: the most kbit in any $FPS consecutive frames."
