#!/usr/bin/env bash
# Evidence of the off-the-shelf issue (docs/RESULTS.md, "Off-the-shelf features"):
# source networks (the DANN paper's MNIST architecture) trained on Fashion-MNIST
# classes 0-4 and on MNIST; target Fashion-MNIST classes 5-9 with 10 and 100 labels
# per class, 5 seeds. For every layer, a linear SVM (C by 5-fold CV on the labelled
# examples only) on its features, beside an SVM on raw pixels ('input') and the same
# network trained from scratch on the same labels.
# Usage: scripts/results/offtheshelf.sh [OUT]   (default runs/offtheshelf; resumable)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/offtheshelf}"
seeds="${SEEDS:-1,2,3,4,5}"
budgets="${BUDGETS:-10,100}"
mkdir -p "$out"
target="fashion-mnist:train@classes=5-9"
target_test="fashion-mnist:test@classes=5-9"

"$here/scripts/results/source_models.sh" "$out"

for src in fmnist04 mnist; do
  [ -f "$out/transfer-$src/results.json" ] && continue
  "$g" transfer --recipe offtheshelf --model "$out/source-$src/model.ckpt" \
    --layers input,pool1,pool2,fc1,fc2 --pool flatten \
    --train "$target" --test "$target_test" --labels-per-class "$budgets" --seeds "$seeds" \
    --threads 2 --out "$out/transfer-$src" --save "$out/transfer-$src/best.ckpt"
done

# The same network from scratch on the same labels (same draws: @per-class with @seed).
# About 400-500 Adam steps whatever the budget.
IFS=, read -ra B <<< "$budgets"; IFS=, read -ra S <<< "$seeds"
for n in "${B[@]}"; do
  epochs=$(( 16000 / (5 * n) )); [ "$epochs" -lt 20 ] && epochs=20
  for s in "${S[@]}"; do
    "$g" train --model dann_mnist --data "$target@per-class=$n@seed=$s" --test "$target_test" \
      --optimizer adam --lr 1e-3 --weight-decay 5e-4 --schedule cosine --epochs "$epochs" --batch-size 32 \
      --seed "$s" --threads 2 --quiet --out "$out/scratch-n$n-s$s" --resume
  done
done

/usr/bin/python3 "$here/scripts/results/summarize_offtheshelf.py" "$out" | tee "$out/summary.md"
