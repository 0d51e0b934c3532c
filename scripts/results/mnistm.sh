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
# Environment: SEEDS (1,2,3), EPOCHS (5), METHODS, THREADS (2), VIEW (a view appended to the
# source and target training sets, e.g. @limit=20000 for a shorter protocol; default: all).
# Finished runs are reused (--resume), so the script can be rerun to complete a table.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/mnistm}"
seeds="${SEEDS:-1,2,3}"
epochs="${EPOCHS:-5}"
threads="${THREADS:-2}"
mkdir -p "$out"
[ -f "${GRAFT_DATA:-$HOME/.cache/graft}/mnistm/t10k-images-idx4-ubyte" ] || "$g" data make mnistm
IFS=, read -ra S <<< "$seeds"
view="${VIEW:-}"
common=(--channels 3 --target "mnistm:train$view" --target-test mnistm:test --epochs "$epochs" --batch-size 64 --lr 0.01
        --threads "$threads" --quiet --resume)
for m in ${METHODS:-source-only dann cdan coral mmd self-train mcc mdd adabn shot tent}; do
  case "$m" in
    shot|tent)  # source-free: each seed adapts that seed's source-only model (tent: the BatchNorm one)
      src=source-only; [ "$m" = tent ] && src=source-only-bn
      for s in "${S[@]}"; do
        if [ ! -f "$out/$src/seed-$s/model.ckpt" ]; then
          model=dann_mnist; [ "$src" = source-only-bn ] && model=dann_mnist_bn
          "$g" adapt --method source-only --model "$model" --source "mnist:train$view" "${common[@]}" --seeds "$s" \
            --out "$out/$src" > /dev/null
        fi
        "$g" adapt --method "$m" --model "$out/$src/seed-$s/model.ckpt" "${common[@]}" --seeds "$s" \
          --out "$out/$m" | tail -n 1
      done ;;
    *)
      model=dann_mnist
      [ "$m" = adabn ] && model=dann_mnist_bn
      "$g" adapt --method "$m" --model "$model" --source "mnist:train$view" "${common[@]}" --seeds "$seeds" \
        --out "$out/$m" | tail -n 1 ;;
  esac
done
for s in "${S[@]}"; do
  [ -f "$out/train-on-target/seed-$s/result.json" ] && continue
  "$g" train --model dann_mnist --data "mnistm:train$view" --test mnistm:test --optimizer sgd --lr 0.01 --momentum 0.9 \
    --schedule inv --epochs "$epochs" --batch-size 64 --seed "$s" --threads "$threads" --quiet \
    --out "$out/train-on-target/seed-$s" --resume > /dev/null
done
/usr/bin/python3 "$here/scripts/results/summarize_adapt.py" "$out"
