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
done > "$tmp/rows"
"$py" - "$tmp/rows" <<'PY'
import json, sys
best = {}
for line in open(sys.argv[1]):
    verb, rest = line.split(" ", 1)
    dec = json.JSONDecoder()
    one, k = dec.raw_decode(rest)
    two, _ = dec.raw_decode(rest[k:].lstrip())
    b1, b2 = best.get(verb, (one, two))
    if one["images_per_s"] > b1["images_per_s"]: b1 = one
    if two["images_per_s"] > b2["images_per_s"]: b2 = two
    best[verb] = (b1, b2)
for verb, (one, two) in best.items():
    steps = two["step"]
    comm = two.get("allreduce_s", 0.0) / steps * 1000
    step_ms = two["seconds"] / steps * 1000
    ratio = two["images_per_s"] / one["images_per_s"]
    print("%s: 1 process %.0f img/s, 2 ranks %.0f img/s (%.2fx); 2 ranks per step: %.1f ms, of which allreduce "
          "wait %.1f ms (communication/rest %.2f)" % (verb, one["images_per_s"], two["images_per_s"], ratio, step_ms,
                                                      comm, comm / max(step_ms - comm, 1e-9)))
PY
echo "  CPU: $(lscpu | sed -n "s/^Model name: *//p"), load average after: $(cut -d" " -f1-3 /proc/loadavg)"
