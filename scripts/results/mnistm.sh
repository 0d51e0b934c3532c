#!/usr/bin/env bash
# MNIST -> MNIST-M-style target with every adaptation method, 3 seeds, plus training on the
# labelled target as the upper bound. The DANN paper's MNIST network on RGB input (AdaBN:
# the same network with BatchNorm, dann_mnist_bn, whose source-BN oracle is its source-only
# row), SGD with the paper's annealing, batch 64 per domain. Every run logs each label-free
# criterion per epoch; the summary shows the test accuracy of the epoch information
# maximisation (graft's default --select) picks from those logs, and what soft neighborhood
# density, source validation
# accuracy and the last epoch would have chosen, and the best epoch by target test labels:
# those labels give oracle numbers only and are never used for a choice.
# Usage: scripts/results/mnistm.sh [OUT]   (default runs/mnistm; skips finished methods)
# Environment: SEEDS (1,2,3), EPOCHS (5), METHODS, THREADS (2).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/mnistm}"
seeds="${SEEDS:-1,2,3}"
epochs="${EPOCHS:-5}"
threads="${THREADS:-2}"
mkdir -p "$out"
[ -f "${GRAFT_DATA:-$HOME/.cache/graft}/mnistm/t10k-images-idx4-ubyte" ] || "$g" data make mnistm
for m in ${METHODS:-source-only dann cdan coral mmd self-train adabn}; do
  [ -f "$out/$m/summary.json" ] && continue
  model=dann_mnist
  [ "$m" = adabn ] && model=dann_mnist_bn
  "$g" adapt --method "$m" --model "$model" --channels 3 --source mnist:train --target mnistm:train \
    --target-test mnistm:test --epochs "$epochs" --batch-size 64 --lr 0.01 --seeds "$seeds" \
    --threads "$threads" --quiet --out "$out/$m" | tail -n 1
done
IFS=, read -ra S <<< "$seeds"
for s in "${S[@]}"; do
  [ -f "$out/train-on-target/seed-$s/result.json" ] && continue
  "$g" train --model dann_mnist --data mnistm:train --test mnistm:test --optimizer sgd --lr 0.01 --momentum 0.9 \
    --schedule inv --epochs "$epochs" --batch-size 64 --seed "$s" --threads "$threads" --quiet \
    --out "$out/train-on-target/seed-$s" --resume > /dev/null
done
/usr/bin/python3 "$here/scripts/results/summarize_adapt.py" "$out"
