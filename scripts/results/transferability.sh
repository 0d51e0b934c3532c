#!/usr/bin/env bash
# Evidence of the transferability issue (docs/RESULTS.md, "Transfer studies").
# 1. Yosinski et al. 2014 on Fashion-MNIST halves and on MNIST halves (classes 0-4 / 5-9):
#    convnet6 (six transferable layers: conv1-conv4, fc5, fc6), 1000 training images per class
#    in each half, 15 epochs of SGD (lr 0.01, momentum 0.9, cosine) for every run, 3 seeds.
#    Each seed trains baseA and baseB, then AnB, AnB+, BnB and BnB+ for n = 1..6; LogME of
#    baseA's layer n on B (2000 images, no training) is scored beside them.
# 2. Per-layer linear probes with LogME beside them (no training of the backbone): the MNIST
#    source network (dann_mnist, scripts/results/source_models.sh) on Fashion-MNIST, and the
#    Fashion-MNIST 0-4 source network on Fashion-MNIST classes 5-9; 100 labels per class, 3 draws.
# Usage: scripts/results/transferability.sh [OUT]   (default runs/study; rerun to resume)
# Environment: SEEDS (1,2,3), EPOCHS (15), PER_CLASS (1000), THREADS (2), DATASETS
#              ("fashion-mnist mnist").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/study}"
seeds="${SEEDS:-1,2,3}"
epochs="${EPOCHS:-15}"
per_class="${PER_CLASS:-1000}"
threads="${THREADS:-2}"
datasets="${DATASETS:-fashion-mnist mnist}"
mkdir -p "$out"

for d in $datasets; do
  "$g" study transferability --data "$d" --split 0-4/5-9 --model convnet6 --seeds "$seeds" \
    --per-class "$per_class" --epochs "$epochs" --threads "$threads" --out "$out/transfer-$d"
done

"$here/scripts/results/source_models.sh" "$here/runs/offtheshelf"
"$g" study layers --model "$here/runs/offtheshelf/source-mnist/model.ckpt" \
  --train fashion-mnist:train --test fashion-mnist:test --labels-per-class 100 --seeds "$seeds" \
  --threads "$threads" --out "$out/layers-mnist-on-fmnist"
"$g" study layers --model "$here/runs/offtheshelf/source-fmnist04/model.ckpt" \
  --train "fashion-mnist:train@classes=5-9" --test "fashion-mnist:test@classes=5-9" \
  --labels-per-class 100 --seeds "$seeds" --threads "$threads" --out "$out/layers-fmnist04-on-fmnist59"
