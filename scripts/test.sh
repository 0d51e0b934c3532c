#!/usr/bin/env bash
# Quick start, command 2: set up this machine, build graft and run the whole test suite.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
cd "${BUILD_DIR:-$here/build}"
export GRAFT_REQUIRE_CHROMIUM=1  # setup.sh installed it: the report tests must not skip
ctest -j "$(nproc)" --output-on-failure --timeout 600
