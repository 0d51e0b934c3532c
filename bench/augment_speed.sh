#!/usr/bin/env bash
# A training epoch with random augmentation, graft vs the idiomatic PyTorch loop, measured in one
# run, alternating, best of N. Both pad each MNIST digit by 2, crop 28x28 at a random place and
# rotate it by up to 10 degrees, then train the DANN MNIST network (batch 128, SGD, 2 threads).
#   graft:   train --augment random-crop=28:2,rotate=10 (the batch is augmented in one pass)
#   PyTorch: bench/py/train_epoch.py --augment (torchvision RandomCrop + RandomRotation in a
#            DataLoader), with 2 workers and with 0; the faster of the two is the peer.
# Ratio = PyTorch's epoch seconds / graft's (above 1: graft is faster).
# usage: bench/augment_speed.sh [REPEATS] [LIMIT]   (LIMIT: first N training images, default all)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"; limit="${2:-0}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
data="mnist:train"; [ "$limit" -gt 0 ] && data="mnist:train@limit=$limit"
g=(); p2=(); p0=()
for i in $(seq "$n"); do
  rm -rf "$tmp/run"
  GRAFT_NO_BLAS_WARNING=1 "$build/graft" train --model dann_mnist --data "$data" --epochs 1 --batch-size 128 \
    --optimizer sgd --lr 0.01 --momentum 0.9 --schedule constant --threads 2 --augment random-crop=28:2,rotate=10 \
    --quiet --out "$tmp/run" >/dev/null
  g+=("$("$py" -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["seconds"])' "$tmp/run/metrics.jsonl")")
  p2+=("$(field "$("$py" "$here/bench/py/train_epoch.py" "$cache/mnist" --augment --workers 2 --threads 2 --batch 128 --limit "$limit")" epoch_seconds)")
  p0+=("$(field "$("$py" "$here/bench/py/train_epoch.py" "$cache/mnist" --augment --workers 0 --threads 2 --batch 128 --limit "$limit")" epoch_seconds)")
done
bg=$(min "${g[@]}"); b2=$(min "${p2[@]}"); b0=$(min "${p0[@]}")
peer=$(min "$b2" "$b0")
echo "augmented MNIST epoch (s, best of $n; $(lscpu | sed -n 's/^Model name: *//p')): graft $bg  pytorch workers 2: $b2  workers 0: $b0"
echo "  speed-up vs the faster pytorch loop $(ratio "$peer" "$bg")x"
echo "  all graft: ${g[*]}"; echo "  all pytorch w2: ${p2[*]}"; echo "  all pytorch w0: ${p0[*]}"
