#!/usr/bin/env bash
# Builds graft with AddressSanitizer + UndefinedBehaviorSanitizer (the Sanitize build
# type) into build-asan and runs the test suite there.
#   scripts/sanitize.sh              the whole suite
#   scripts/sanitize.sh FILTER       a gtest filter, e.g. 'Reliability.*:Npy.*' (what CI runs)
# libtorch, OpenCV and OpenBLAS are not instrumented: ASan still checks every access
# graft makes, UBSan every graft expression. Leak checking is off because libtorch
# keeps allocations alive until exit by design; see docs/RELIABILITY.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ASAN_BUILD_DIR:-$here/build-asan}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:detect_odr_violation=0:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
BUILD_DIR="$build" "$here/scripts/build.sh" -DCMAKE_BUILD_TYPE=Sanitize -DGRAFT_BUILD_BENCH=OFF
cd "$build"
if [ $# -gt 0 ]; then
  ./tests/graft_tests --gtest_filter="$1"
else
  ctest -j "$(nproc)" --output-on-failure --timeout 1800
fi
