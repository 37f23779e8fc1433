#!/usr/bin/env bash
# The real-driver tests: capture-v4l2 against Linux's vivid driver and
# encoder-v4l2m2m against its vicodec (a stateful encoder), built as in
# production, in one qemu VM. Prints "N passed, N failed".
#   usage: run.sh SOURCE_DIR PROD_BUILD_DIR WORK_DIR
set -euo pipefail
SRC=$1
PROD=$2
WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
# A release build without sanitizers, as a device runs it.
cmake -S "$SRC" -B "$PROD" -DCMAKE_BUILD_TYPE=Release -DOUTPOST_SANITIZE=OFF >/dev/null
cmake --build "$PROD" -j"$(nproc)" --target outpost-kernel outpost-host outpostctl capture-v4l2 \
  capture-testsrc encoder-v4l2m2m test-sink test-tap >/dev/null
t0=$(date +%s.%N)
"$HERE/build-vm.sh" "$PROD" "$WORK/vm"
t1=$(date +%s.%N)
"$HERE/run-vm.sh" "$WORK/vm" "$WORK/results" || true
t2=$(date +%s.%N)
sed -n 's/^\[guest/  [guest/p' "$WORK/results/console.log"
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "vm: build %.1f s, run %.1f s\n", b - a, c - b }'
exec python3 "$HERE/check.py" "$WORK/results"
