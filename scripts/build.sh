#!/usr/bin/env bash
# Configure and build graft (Release) into build/. Extra arguments go to cmake.
#   BUILD_DIR=build-asan scripts/build.sh -DCMAKE_BUILD_TYPE=Sanitize
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$here/build}"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  # GRAFT_GLOO=ON: multi-process CPU training is required here, never silently left out.
  cmake -S "$here" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGRAFT_GLOO=ON "$@"
elif [ $# -gt 0 ]; then
  cmake -S "$here" -B "$build" "$@"
fi
cmake --build "$build" -j "$(nproc)"
