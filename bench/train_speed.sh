#!/usr/bin/env bash
# graft vs Python PyTorch (Debian python3-torch), same network (the DANN MNIST net),
# batch 128, SGD with momentum, 2 threads, measured in one run, alternating, best of N.
#   1. per training step (data in memory): ratio = PyTorch ms/step / graft ms/step
#   2. a whole MNIST epoch including the data pipeline, graft train vs the idiomatic
#      torchvision MNIST + DataLoader(num_workers=2) script: ratio = PyTorch s / graft s
# graft tunes glibc's allocator at start-up (graft::tune_allocator); PyTorch is measured
# both as is (idiomatic) and with the same settings through GLIBC_TUNABLES ("tuned"), so
# the compute-only comparison is like for like.
# usage: bench/train_speed.sh [REPEATS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"
step_g=(); step_p=(); step_t=(); ep_g=(); ep_p=(); ep_t=()
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$n"); do
  step_g+=("$(field "$("$build/bench/bench_train_step" --batch 128 --steps 150 --threads 2)" ms_per_step)")
  step_p+=("$(field "$("$py" "$here/bench/py/train_step.py" --batch 128 --steps 150 --threads 2)" ms_per_step)")
  step_t+=("$(field "$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/train_step.py" --batch 128 --steps 150 --threads 2)" ms_per_step)")
done
for i in $(seq "$n"); do
  rm -rf "$tmp/run"
  GRAFT_NO_BLAS_WARNING=1 "$build/graft" train --model dann_mnist --data mnist:train --epochs 1 --batch-size 128 \
    --optimizer sgd --lr 0.01 --momentum 0.9 --schedule constant --threads 2 --workers 2 --quiet --out "$tmp/run" >/dev/null
  ep_g+=("$("$py" -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1])][0]["seconds"])' "$tmp/run/metrics.jsonl")")
  ep_p+=("$(field "$("$py" "$here/bench/py/train_epoch.py" "$cache/mnist" --workers 2 --threads 2 --batch 128)" epoch_seconds)")
  ep_t+=("$(field "$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/train_epoch.py" "$cache/mnist" --workers 2 --threads 2 --batch 128)" epoch_seconds)")
done
sg=$(min "${step_g[@]}"); sp=$(min "${step_p[@]}"); st=$(min "${step_t[@]}")
eg=$(min "${ep_g[@]}"); ep=$(min "${ep_p[@]}"); et=$(min "${ep_t[@]}")
echo "train step (ms, best of $n): graft $sg  pytorch $sp  pytorch-tuned $st"
echo "  speed-up vs pytorch $(ratio "$sp" "$sg")x, vs pytorch-tuned $(ratio "$st" "$sg")x"
echo "  all graft: ${step_g[*]}"; echo "  all pytorch: ${step_p[*]}"; echo "  all pytorch-tuned: ${step_t[*]}"
echo "MNIST epoch with data pipeline (s, best of $n): graft $eg  pytorch $ep  pytorch-tuned $et"
echo "  speed-up vs pytorch $(ratio "$ep" "$eg")x, vs pytorch-tuned $(ratio "$et" "$eg")x"
echo "  all graft: ${ep_g[*]}"; echo "  all pytorch: ${ep_p[*]}"; echo "  all pytorch-tuned: ${ep_t[*]}"
