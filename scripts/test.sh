#!/usr/bin/env bash
# Quick start, command 2: set up this machine, build graft and run the whole test suite,
# then the sanitized part (clang, ASan+UBSan, in build-fuzz): a few seconds of each fuzz
# harness from its seeds and the reader/parser/checkpoint/run-folder tests. About 5 more
# minutes on 2 cores; GRAFT_SKIP_SANITIZED=1 leaves it out (scripts/fuzz.sh check runs it alone).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
(
  cd "${BUILD_DIR:-$here/build}"
  export GRAFT_REQUIRE_CHROMIUM=1  # setup.sh installed it: the report tests must not skip
  ctest -j "$(nproc)" --output-on-failure --timeout 600
)
if [ "${GRAFT_SKIP_SANITIZED:-0}" != 1 ]; then
  "$here/scripts/fuzz.sh" check 5
fi
