#!/usr/bin/env bash
# Rotation pretraining speed: graft pretrain --task rotation vs a Python PyTorch loop of the same
# task (Debian python3-torch, bench/py/rotation_loop.py): Fashion-MNIST train images, each turned
# by 0/90/180/270 degrees (4 x 60,000 examples, label = the turn), augmented per example with a
# zero-padded random crop 28:2 then normalised 0.5/0.5, the DANN paper's MNIST net on 1-channel
# input with 4 outputs, batch 128, SGD lr 0.05 momentum 0.9 with a per-step cosine schedule,
# 2 threads, 2 loader workers; measured in one run, alternating, best of N. The figure is
# training images per second (rotated examples, i.e. batch items), end to end (data loading
# included):
#   graft    one epoch of `graft pretrain` (240,000 examples, 1875 steps); images/s is the
#            images_per_s of the epoch's line in metrics.jsonl, which the trainer measures as
#            examples seen / wall time over the epoch's training steps (from the start of the
#            epoch, the loader's start-up included; no validation: --val-split is 0)
#   pytorch  rotation_loop.py, one epoch's worth of steps (1875) after 5 untimed warm-up steps
#            (which also hide its DataLoader worker start-up, so the comparison leans in
#            PyTorch's favour)
# graft tunes glibc's allocator at start-up (graft::tune_allocator); PyTorch is measured both
# as is (idiomatic) and with the same settings through GLIBC_TUNABLES ("tuned").
# Ratios: graft images/s / pytorch images/s (above 1: graft is faster).
# usage: bench/pretrain_speed.sh [REPEATS]   (default 3; or REPEATS=N in the environment)
# PRETRAIN_STEPS=N (smoke tests only): time N PyTorch steps instead of an epoch (graft still
# runs its whole epoch).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-${REPEATS:-3}}"
steps="${PRETRAIN_STEPS:-}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
max() { "$py" -c 'import sys; print(max(float(v) for v in sys.argv[1:]))' "$@"; }
# epoch_field METRICS KEY: KEY of the first "event": "epoch" line of a metrics.jsonl
epoch_field() {
  "$py" -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "epoch":
        print(e[sys.argv[2]]); break
else:
    sys.exit(sys.argv[1] + ": no epoch line")' "$1" "$2"
}

gargs=(pretrain --task rotation --model dann_mnist --data fashion-mnist:train --epochs 1 --batch-size 128
       --lr 0.05 --threads 2 --workers 2 --quiet)
pyargs=(--batch 128 --threads 2 --workers 2 --warmup 5)
if [ -n "$steps" ]; then pyargs+=(--steps "$steps"); fi

g=(); p=(); t=(); gsteps=(); psteps=""
for _ in $(seq "$n"); do
  rm -rf "$tmp/run"
  GRAFT_NO_BLAS_WARNING=1 "$build/graft" "${gargs[@]}" --out "$tmp/run" >/dev/null
  g+=("$(epoch_field "$tmp/run/metrics.jsonl" images_per_s)")
  gsteps+=("$(epoch_field "$tmp/run/metrics.jsonl" step)")
  out="$("$py" "$here/bench/py/rotation_loop.py" "${pyargs[@]}")"
  p+=("$(field "$out" images_per_s)"); psteps="$(field "$out" steps)"
  t+=("$(field "$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/rotation_loop.py" "${pyargs[@]}")" images_per_s)")
done
bg=$(max "${g[@]}"); bp=$(max "${p[@]}"); bt=$(max "${t[@]}")
echo "Rotation pretraining, Fashion-MNIST train, batch 128, 2 threads (images/s, best of $n):" \
     "graft $bg  pytorch $bp  pytorch-tuned $bt"
echo "  speed-up vs pytorch $(ratio "$bg" "$bp")x, vs pytorch-tuned $(ratio "$bg" "$bt")x"
echo "  steps timed: graft ${gsteps[*]} (one epoch each), pytorch $psteps after 5 warm-up"
echo "  all graft: ${g[*]}"; echo "  all pytorch: ${p[*]}"; echo "  all pytorch-tuned: ${t[*]}"
