#!/usr/bin/env bash
# DANN training speed: graft adapt --method dann vs a Python PyTorch DANN loop (Debian
# python3-torch, bench/py/dann_loop.py) with the same network (the DANN paper's MNIST net on
# 3-channel input plus the 1024-1024-1 domain classifier behind gradient reversal), the same
# batches (64 MNIST source + 64 MNIST-M-style target images per step, 2 loader workers),
# SGD with momentum 0.9 and the paper's lambda / lr schedules, 2 threads; measured in one run,
# alternating, best of N. The figure is training iterations per second, end to end (data
# loading included):
#   graft    one epoch of `graft adapt` (54,000 source images after the 10% hold-out, i.e.
#            843 steps); iterations/s = step / seconds of the epoch's line in
#            metrics.jsonl (the training steps from the start of the epoch, the source
#            loader's start-up included; the per-epoch evaluation is not)
#   pytorch  dann_loop.py --steps 843 after 5 untimed warm-up steps (which also hide its
#            DataLoader worker start-up, so the comparison leans in PyTorch's favour)
# graft tunes glibc's allocator at start-up (graft::tune_allocator); PyTorch is measured both
# as is (idiomatic) and with the same settings through GLIBC_TUNABLES ("tuned"), and tuned with
# the network and batches in channels-last format, which graft uses by default on the CPU
# ("tuned-channels-last": the same layout choice written by hand in Python).
# Ratios: graft it/s / pytorch it/s (above 1: graft is faster).
# usage: bench/dann_speed.sh [REPEATS]   (default 3)
# DANN_STEPS=N (smoke tests only): time N PyTorch steps instead of 843 (graft still runs its epoch).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"
steps="${DANN_STEPS:-843}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
max() { "$py" -c 'import sys; print(max(float(v) for v in sys.argv[1:]))' "$@"; }
# iters_per_s METRICS: step / seconds of the first epoch line
iters_per_s() {
  "$py" -c 'import json,sys
e=json.loads(open(sys.argv[1]).readline()); print("%.3f" % (e["step"] / e["seconds"]))' "$1"
}

if [ ! -f "$cache/mnistm/train-images-idx4-ubyte" ]; then
  echo "making the MNIST-M-style target set (graft data make mnistm)" >&2
  "$build/graft" data make mnistm >&2
fi
gargs=(adapt --method dann --model dann_mnist --channels 3 --source mnist:train --target mnistm:train
       --epochs 1 --batch-size 64 --optimizer sgd --lr 0.01 --threads 2 --workers 2 --quiet --seeds 1)
pyargs=(--batch 64 --threads 2 --workers 2 --steps "$steps" --warmup 5 --mnist "$cache/mnist" --mnistm "$cache/mnistm")

g=(); p=(); t=(); c=(); gsteps=()
for i in $(seq "$n"); do
  rm -rf "$tmp/run"
  GRAFT_NO_BLAS_WARNING=1 "$build/graft" "${gargs[@]}" --out "$tmp/run" >/dev/null
  g+=("$(iters_per_s "$tmp/run/seed-1/metrics.jsonl")")
  gsteps+=("$(field "$(head -n 1 "$tmp/run/seed-1/metrics.jsonl")" step)")
  p+=("$(field "$("$py" "$here/bench/py/dann_loop.py" "${pyargs[@]}")" iters_per_s)")
  t+=("$(field "$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/dann_loop.py" "${pyargs[@]}")" iters_per_s)")
  c+=("$(field "$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/dann_loop.py" "${pyargs[@]}" --channels-last)" iters_per_s)")
done
bg=$(max "${g[@]}"); bp=$(max "${p[@]}"); bt=$(max "${t[@]}"); bc=$(max "${c[@]}")
echo "DANN training, MNIST -> MNIST-M, batch 64+64, 2 threads (iterations/s, best of $n):" \
     "graft $bg  pytorch $bp  pytorch-tuned $bt  pytorch-tuned-channels-last $bc"
echo "  speed-up vs pytorch $(ratio "$bg" "$bp")x, vs pytorch-tuned $(ratio "$bg" "$bt")x," \
     "vs pytorch-tuned-channels-last $(ratio "$bg" "$bc")x"
echo "  steps timed: graft ${gsteps[*]} (one epoch each), pytorch $steps after 5 warm-up"
echo "  all graft: ${g[*]}"; echo "  all pytorch: ${p[*]}"; echo "  all pytorch-tuned: ${t[*]}"
echo "  all pytorch-tuned-channels-last: ${c[*]}"
