#!/usr/bin/env bash
# One device session for issue 17's GPU table, in two halves:
#   bench/gpu_session.sh prepare        here, on Debian 12: .gpu/ (git-ignored) with graft's C++
#                                       dependency bundle (scripts/deps_bundle.sh) and the data the
#                                       benchmark reads (MNIST gzipped, the cached photos); about
#                                       50 MB, inside the 64 MiB a device call may carry
#   bench/gpu_session.sh run OUT [ARGS] on the GPU machine, from the repo root, with .gpu carried:
#                                       unpacks the data into /tmp/graft-data, builds graft against
#                                       the machine's pip torch (bench/gpu.sh --build, /usr/bin/g++)
#                                       with the device tests, and runs bench/gpu.sh --tests --out OUT
#                                       ARGS (default: --device cuda): the Devices/* tests, then the table
# The device call: command "bash bench/gpu_session.sh run $OUT", carry [".gpu"], a timeout of
# about 590 s (the build takes a few minutes on 16 cores; bench/gpu.sh --quick is the shorter run).
# Rehearsal on the CPU (no build; BUILD_DIR's graft):
#   bench/gpu_session.sh prepare && GPU_SESSION_NO_BUILD=1 bench/gpu_session.sh run /tmp/o --device cpu --quick
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gpu="$here/.gpu"
cache="${GRAFT_DATA:-${HOME:-/root}/.cache/graft}"
case "${1:-}" in
  prepare)
    bash "$here/scripts/deps_bundle.sh" "$gpu/deps"
    rm -rf "$gpu/data"; mkdir -p "$gpu/data/mnist"
    for f in "$cache"/mnist/*-ubyte; do gzip -c "$f" > "$gpu/data/mnist/$(basename "$f").gz"; done
    cp -r "$cache/photos" "$gpu/data/photos"
    echo "$gpu: $(du -sm "$gpu" | cut -f1) MB (the device call carries it with the checkout)"
    ;;
  run)
    out="${2:?usage: bench/gpu_session.sh run OUT [bench/gpu.sh options]}"; shift 2
    [ -d "$gpu/data" ] || { echo "gpu_session.sh: no $gpu/data; run 'bench/gpu_session.sh prepare' first and carry .gpu" >&2; exit 1; }
    data=/tmp/graft-data
    mkdir -p "$data/mnist" "$out"
    for f in "$gpu"/data/mnist/*.gz; do gunzip -c "$f" > "$data/mnist/$(basename "$f" .gz)"; done
    cp -r "$gpu/data/photos" "$data/"
    export GRAFT_DATA="$data" GRAFT_DEPS_DIR="$gpu/deps"
    args=("$@"); [ ${#args[@]} -gt 0 ] || args=(--device cuda)
    build=(--build --tests); [ -n "${GPU_SESSION_NO_BUILD:-}" ] && build=(--tests)
    { nvidia-smi 2>/dev/null || true; lscpu | sed -n 's/^Model name: *//p'; } > "$out/machine.txt"
    bash "$here/bench/gpu.sh" "${build[@]}" --out "$out" "${args[@]}" 2>&1 | tee "$out/gpu.log"
    ;;
  *)
    sed -n 2,15p "$0"; exit 2
    ;;
esac
