#!/usr/bin/env bash
# libFuzzer harnesses of graft's parsers (fuzz/), built with clang-14 into build-fuzz
# with AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/fuzz.sh build                 configure and build every harness
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
  echo "-rss_limit_mb=2048 -timeout=20 -max_len=$max_len -print_final_stats=1"
  [ -f "$here/fuzz/$name.dict" ] && echo "-dict=$here/fuzz/$name.dict"
  return 0
}

run_one() {  # BIN SEEDS SECONDS: a throw-away copy of the seeds, so nothing is written back
  local bin="$1" seeds="$2" secs="$3" name work
  name="$(basename "$bin")"; name="${name#fuzz_}"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  cp -r "$seeds"/. "$work"/
  # shellcheck disable=SC2046
  "$bin" $(flags "$name") -max_total_time="$secs" "$work"
}

case "${1:-}" in
  build)
    command -v clang++-14 >/dev/null || { echo "fuzz.sh: clang++-14 missing (apt-get install clang-14 libclang-rt-14-dev)"; exit 1; }
    gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
    CC=clang-14 CXX=clang++-14 cmake -S "$here" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DGRAFT_BUILD_FUZZ=ON -DGRAFT_BUILD_TESTS=OFF -DGRAFT_BUILD_BENCH=OFF
    cmake --build "$build" --target fuzz_all -j "$(nproc)"
    ;;
  smoke)
    secs="${2:-5}"
    for f in "${fuzzers[@]}"; do
      echo "== fuzz_$f ($secs s)"
      run_one "$build/fuzz/fuzz_$f" "$here/fuzz/corpus/$f" "$secs" 2>&1 | grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|ERROR|SUMMARY" || true
      [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz_$f FAILED"; exit 1; }
    done
    ;;
  run)
    name="${2:?name: ${fuzzers[*]}}"; runs="${3:-10000000}"; secs="${4:-0}"
    mkdir -p "$build/corpus/$name"
    # shellcheck disable=SC2046
    "$build/fuzz/fuzz_$name" $(flags "$name") -runs="$runs" -max_total_time="$secs" "$build/corpus/$name" \
      "$here/fuzz/corpus/$name" > "$build/$name.log" 2>&1 || { echo "fuzz_$name FAILED, see $build/$name.log"; }
    grep -E "^stat::|Done [0-9]+ runs" "$build/$name.log"
    ;;
  --run-one)
    run_one "$2" "$3" "$4"
    ;;
  *)
    sed -n 2,12p "$0"; exit 2
    ;;
esac
