#!/usr/bin/env bash
# Data-parallel training through the Trainer, end to end: one process against two local ranks
# started by graft launch, 1 compute thread and 1 loader thread per process, the same examples
# per step (batch 2B in one process, B per rank):
#   train   dann_mnist on the first N MNIST training images, 1 epoch, SGD
#   adapt   DANN, MNIST -> MNIST-M-style (first N of each), 1 epoch
# Figures from the epoch row of metrics.jsonl: images/s over all ranks, and on 2 ranks the
# seconds per step spent in the gradient allreduce (rank 0's wait after backward, which
# includes waiting for the slower rank) beside the rest of the step. Best of REPEATS.
# Needs an idle machine: 2 ranks x 2 threads fill both cores of a 2-core machine.
# usage: bench/dist_train.sh [REPEATS] [N] [B]   (defaults 2, 12800, 32)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-2}"; limit="${2:-12800}"; b="${3:-32}"
export GRAFT_NO_BLAS_WARNING=1
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
[ -f "$cache/mnistm/train-images-idx4-ubyte" ] || "$build/graft" data make mnistm >&2
common=(--epochs 1 --optimizer sgd --lr 0.01 --threads 1 --workers 1 --quiet)
train=(train --model dann_mnist --data "mnist:train@limit=$limit" "${common[@]}")
adapt=(adapt --method dann --model dann_mnist --channels 3 --source "mnist:train@limit=$limit"
       --target "mnistm:train@limit=$limit" --seeds 1 "${common[@]}")
row() { head -n 1 "$1"; }
for verb in train adapt; do
  if [ "$verb" = train ]; then args=("${train[@]}"); m=metrics.jsonl; else args=("${adapt[@]}"); m=seed-1/metrics.jsonl; fi
  for i in $(seq "$n"); do
    rm -rf "$tmp/one" "$tmp/two"
    "$build/graft" "${args[@]}" --batch-size $((2 * b)) --out "$tmp/one" > /dev/null 2>&1
    "$build/graft" launch --nproc 2 -- "${args[@]}" --batch-size "$b" --out "$tmp/two" > /dev/null 2>&1
    echo "$verb $(row "$tmp/one/$m") $(row "$tmp/two/$m")"
  done
done | "$py" -c '
import json, sys
best = {}
for line in sys.stdin:
    verb, rest = line.split(" ", 1)
    dec = json.JSONDecoder(); one, k = dec.raw_decode(rest); two, _ = dec.raw_decode(rest[k:].lstrip())
    b = best.get(verb)
    if b is None or one["images_per_s"] > b[0]["images_per_s"]: b = (one, b[1] if b else two)
    if two["images_per_s"] > b[1]["images_per_s"]: b = (b[0], two)
    best[verb] = b
for verb, (one, two) in best.items():
    steps = two["step"]; comm = two.get("allreduce_s", 0.0) / steps * 1000
    step_ms = two["seconds"] / steps * 1000
    print(f"{verb}: 1 process {one[\"images_per_s\"]:.0f} img/s, 2 ranks {two[\"images_per_s\"]:.0f} img/s "
          f"({two[\"images_per_s\"] / one[\"images_per_s\"]:.2f}x); 2 ranks per step: {step_ms:.1f} ms, of which "
          f"allreduce wait {comm:.1f} ms (communication/rest {comm / max(step_ms - comm, 1e-9):.2f})")
'
echo "  CPU: $(lscpu | sed -n "s/^Model name: *//p"), load average after: $(cut -d" " -f1-3 /proc/loadavg)"
