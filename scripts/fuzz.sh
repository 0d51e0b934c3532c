#!/usr/bin/env bash
# libFuzzer harnesses of graft's parsers (fuzz/), built with clang-14 into build-fuzz
# with AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/fuzz.sh build                 configure and build every harness and the sanitized
#                                         subset of the suite (graft_sanitized_tests)
#   scripts/fuzz.sh check [SECONDS]       what CI runs (scripts/test.sh): build, the smoke, and the
#                                         sanitized subset of the suite (readers, parsers,
#                                         checkpoints, run folders, fine-tuning) under ASan+UBSan
#   scripts/fuzz.sh smoke [SECONDS]       run each harness SECONDS (default 5) from its seeds
#   scripts/fuzz.sh run NAME [RUNS [SECS]] run one harness for RUNS executions (default 10 million)
#                                         or SECS seconds if that comes first (default: no limit);
#                                         the grown corpus stays in build-fuzz/corpus/NAME, the log
#                                         in build-fuzz/NAME.log (figures: last "stat::" lines)
#   scripts/fuzz.sh --run-one BIN SEEDS SECONDS   one smoke run (what ctest -L fuzz calls)
# libtorch is not instrumented; leak checking is off because libtorch keeps global
# allocations alive at exit (see docs/RELIABILITY.md).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$here/build-fuzz}"
fuzzers=(idx npy list transform spec checkpoint)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

flags() {  # libFuzzer flags shared by every run
  local name="$1"
  local max_len=8192
  [ "$name" = checkpoint ] && max_len=16384  # the seed checkpoints are 8 and 13 KB
  # a failing input is written into the build folder (crash-*, timeout-*, oom-*), not the cwd
  echo "-rss_limit_mb=2048 -timeout=20 -max_len=$max_len -print_final_stats=1 -artifact_prefix=$build/"
  [ -f "$here/fuzz/$name.dict" ] && echo "-dict=$here/fuzz/$name.dict"
  return 0
}

run_one() {  # BIN SEEDS SECONDS: a throw-away copy of the seeds, so nothing is written back
  local bin="$1" seeds="$2" secs="$3" name work rc=0
  name="$(basename "$bin")"; name="${name#fuzz_}"
  work="$(mktemp -d)"
  cp -r "$seeds"/. "$work"/
  # shellcheck disable=SC2046
  "$bin" $(flags "$name") -max_total_time="$secs" "$work" || rc=$?
  rm -rf "$work"
  return "$rc"
}

build() {
  command -v clang++-14 >/dev/null || { echo "fuzz.sh: clang++-14 missing (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
  local gen=() launcher=()
  command -v ninja >/dev/null && gen=(-G Ninja)
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  CC=clang-14 CXX=clang++-14 cmake -S "$here" -B "$build" "${gen[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DGRAFT_BUILD_FUZZ=ON -DGRAFT_BUILD_TESTS=OFF -DGRAFT_BUILD_BENCH=OFF
  cmake --build "$build" --target fuzz_all graft_sanitized_tests -j "$(nproc)"
}

smoke() {  # SECONDS: every harness from its seeds
  local f log rc
  log="$(mktemp)"
  for f in "${fuzzers[@]}"; do
    echo "== fuzz_$f ($1 s)"
    rc=0
    run_one "$build/fuzz/fuzz_$f" "$here/fuzz/corpus/$f" "$1" > "$log" 2>&1 || rc=$?
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec" "$log" || true
    if [ "$rc" -ne 0 ]; then
      tail -n 40 "$log"; rm -f "$log"
      echo "fuzz_$f FAILED (exit $rc); the input that failed is named above"; exit 1
    fi
  done
  rm -f "$log"
}

# The sanitized subset leaves out the five tests that run the graft executable (not built in
# this tree); scripts/sanitize.sh runs them sanitized with the rest of the suite.
sanitized_tests_filter='-Reliability.EvalAndPredictRefuseAModelWithNonFiniteWeights:Reliability.PredictCsvQuotesClassNamesWithCommasQuotesAndNewlines:Reliability.EmptyOrNegativeSeedsAreErrors:Reliability.DamagedCodeInsideAModelFileIsOneLine:Finetune.CliFinetunesAndRejectsBadInput'

case "${1:-}" in
  build)
    build
    ;;
  smoke)
    smoke "${2:-5}"
    ;;
  check)
    build
    smoke "${2:-5}"
    echo "== graft_sanitized_tests (ASan+UBSan)"
    [ -f "$build/fuzz/fixtures/resnet_tiny.pt" ] || /usr/bin/python3 "$here/scripts/make_fixtures.py" "$build/fuzz/fixtures" > /dev/null
    ASAN_OPTIONS="detect_leaks=0:detect_odr_violation=0" "$build/fuzz/graft_sanitized_tests" --gtest_filter="$sanitized_tests_filter"
    ;;
  run)
    name="${2:?name: ${fuzzers[*]}}"; runs="${3:-10000000}"; secs="${4:-0}"
    mkdir -p "$build/corpus/$name"
    # shellcheck disable=SC2046
    "$build/fuzz/fuzz_$name" $(flags "$name") -runs="$runs" -max_total_time="$secs" "$build/corpus/$name" \
      "$here/fuzz/corpus/$name" > "$build/$name.log" 2>&1 || rc=$?
    grep -E "^stat::|Done [0-9]+ runs" "$build/$name.log" || true
    [ "${rc:-0}" -eq 0 ] || { echo "fuzz_$name FAILED (exit $rc), see $build/$name.log"; exit 1; }
    ;;
  --run-one)
    run_one "$2" "$3" "$4"
    ;;
  *)
    sed -n 2,12p "$0"; exit 2
    ;;
esac
