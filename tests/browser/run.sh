#!/usr/bin/env bash
# The browser end-to-end tests run the device kernels, the plugin and Janus
# from the test build (ASan + UBSan; Janus with the runtimes preloaded): a
# sanitizer report in any of their logs fails the test (spine.py's clean stop).
# The devices encode with libaom, the device default, which keeps 30 fps live
# under ASan; what is asserted is behaviour (the frames the device sent are
# decoded), not this machine's speed.
#   usage: [TEST_FILE=edge.test.mjs] run.sh SOURCE_DIR BUILD_DIR OUT_DIR [node --test args]
# (TEST_FILE: which file of tests/browser; spine.test.mjs unless said)
set -euo pipefail
SRC=$1
BUILD=$2
OUT=$3
shift 3
export OUTPOST_BUILD="$BUILD" OUTPOST_TEST_OUT="$OUT"
exec node --test --test-reporter=spec "$@" "$SRC/tests/browser/${TEST_FILE:-spine.test.mjs}"
