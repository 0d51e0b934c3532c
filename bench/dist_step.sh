#!/usr/bin/env bash
# Data-parallel step cost on this machine: one process with batch 2B against two local ranks
# with batch B each (the same examples per step), 1 thread per process, random data, no
# optimizer (graft dist-check --model). Per model it prints the compute time per step, the
# gradient allreduce time (after backward, and what is left to wait for when it overlaps
# backward) and the throughput ratio 2 ranks / 1 process (> 1: faster on 2 ranks).
# The allreduce time includes waiting for the slower rank: on a shared machine it measures
# the load as much as the communication. Run it on an idle machine for numbers to quote.
# usage: bench/dist_step.sh [STEPS] [B]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
steps="${1:-30}"; b="${2:-32}"
export GRAFT_NO_BLAS_WARNING=1
last_json() { grep '^{' | tail -n1; }
for arch in dann_mnist resnet20; do
  one="$("$build/graft" dist-check --model "$arch" --batch $((2 * b)) --steps "$steps" --threads 1 | last_json)"
  two="$("$build/graft" launch --nproc 2 -- dist-check --model "$arch" --batch "$b" --steps "$steps" --threads 1 \
         --mb 1 2>/dev/null | last_json || true)"
  [ -n "$two" ] || { echo "$arch: the 2-rank run failed" >&2; exit 1; }
  "$py" - "$arch" "$one" "$two" "$b" <<'PY'
import json, sys
arch, one, two, b = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
c1 = one["compute_ms"]; c2, a2 = two["compute_ms"], two["allreduce_ms"]
ob, ow = two["overlap_backward_ms"], two["overlap_wait_ms"]
print(f"{arch}: {two['grad_mib']:.2f} MiB of gradients per step")
print(f"  1 process, batch {2*b}: compute {c1:.1f} ms/step ({2*b/c1*1000:.0f} img/s)")
print(f"  2 ranks, batch {b} each: compute {c2:.1f} ms + allreduce {a2:.1f} ms after backward "
      f"(communication/compute {a2/c2:.2f}); overlapped: {ob:.1f} ms + wait {ow:.1f} ms")
print(f"  throughput 2 ranks / 1 process: after backward {c1/(c2+a2):.2f}x, overlapped {c1/(ob+ow):.2f}x")
PY
done
