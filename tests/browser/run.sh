#!/usr/bin/env bash
# The browser end-to-end tests run the device kernels, the plugin and Janus as
# production does: a release build without sanitizers (build-prod, shared with
# the vivid test). Every part is also tested under ASan + UBSan by the other
# ctest entries; here frame rates and latencies are asserted, and ASan's
# intercepted malloc costs rav1e ~35 % (tests would measure the sanitizer).
#   usage: run.sh SOURCE_DIR PROD_BUILD_DIR OUT_DIR [node --test args]
set -euo pipefail
SRC=$1
PROD=$2
OUT=$3
shift 3
cmake -S "$SRC" -B "$PROD" -DCMAKE_BUILD_TYPE=Release -DOUTPOST_SANITIZE=OFF >/dev/null
cmake --build "$PROD" -j"$(nproc)" >/dev/null
export OUTPOST_BUILD="$PROD" OUTPOST_TEST_OUT="$OUT"
exec node --test --test-reporter=spec "$@" "$SRC/tests/browser/spine.test.mjs"
