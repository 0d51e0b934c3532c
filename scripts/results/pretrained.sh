#!/usr/bin/env bash
# The seed's experiment with a real ImageNet-derived network (docs/RESULTS.md,
# "A real pretrained network: MobileNetV2 from ImageNet"):
#   MobileNetV2 (npm nsfwjs, ImageNet-pretrained then fine-tuned on 5 photo classes;
#   converted by scripts/fetch_models.sh) off-the-shelf: each stage's features (flattened)
#   + a linear SVM (C by 5-fold CV on the labelled images), 10 and 100 labels per class,
#   5 seeds, on Fashion-MNIST classes 5-9 and on the MNIST-M-style target (10 classes);
#   beside the pixel SVM ('input'), the small source networks of RESULTS (dann_mnist on
#   Fashion-MNIST 0-4 / on MNIST, best layers pool1/pool2) on the same test subset, and
#   dann_mnist trained from scratch on the same labels; then fine-tuning the upper
#   stages at 100 labels per class; LogME/LEEP vs probe per stage (graft study layers).
# Images: 28x28 upscaled (bilinear) to SIZE x SIZE (default 64, what 2 shared cores
# allow), gray repeated to RGB, values in [0, 1] as nsfwjs feeds the network.
# Test: the first TEST_N (default 2000) images of each test set.
# Usage: scripts/results/pretrained.sh [OUT]   (default runs/pretrained; resumable)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/pretrained}"
cache="${GRAFT_DATA:-${HOME:-/root}/.cache/graft}"
model="${MODEL:-$cache/models/mobilenet_v2.pt}"
size="${SIZE:-64}"
test_n="${TEST_N:-2000}"
seeds="${SEEDS:-1,2,3,4,5}"
budgets="${BUDGETS:-10,100}"
threads="${THREADS:-1}"
ft_seeds="${FT_SEEDS:-1,2,3}"
layers="input,block_1,block_3,block_6,block_10,block_13,block_16,last_conv,pool"
[ -s "$model" ] || { echo "pretrained.sh: $model is missing; run scripts/fetch_models.sh" >&2; exit 1; }
[ -s "$cache/mnistm/train-labels-idx1-ubyte" ] || "$g" data make mnistm
mkdir -p "$out"
pre="resize=${size}x${size}"

declare -A TRAIN=([fmnist59]="fashion-mnist:train@classes=5-9" [mnistm]="mnistm:train")
declare -A TEST=([fmnist59]="fashion-mnist:test@classes=5-9@limit=$test_n" [mnistm]="mnistm:test@limit=$test_n")
declare -A SOURCE=([fmnist59]=fmnist04 [mnistm]=mnist)

"$here/scripts/results/source_models.sh" "$out"

for t in fmnist59 mnistm; do
  [ -n "${BASELINES_ONLY:-}${SKIP_MNV2:-}" ] && continue
  # 1. MobileNetV2 stages, off-the-shelf
  [ -f "$out/mnv2-$t/results.json" ] || "$g" transfer --model "$model" --channels 3 --preprocess "$pre" \
    --layers "$layers" --pool flatten --train "${TRAIN[$t]}" --test "${TEST[$t]}" \
    --labels-per-class "$budgets" --seeds "$seeds" --threads "$threads" --quiet --out "$out/mnv2-$t" \
    --save "$out/mnv2-$t/best.ckpt"
done
for t in fmnist59 mnistm; do
  # 2. the small source network of RESULTS on the same test subset
  [ -n "${BASELINES_ONLY:-}" ] || [ -f "$out/small-$t/results.json" ] || "$g" transfer --model "$out/source-${SOURCE[$t]}/model.ckpt" \
    --layers pool1,pool2 --pool flatten --train "${TRAIN[$t]}" --test "${TEST[$t]}" \
    --labels-per-class "$budgets" --seeds "$seeds" --threads "$threads" --quiet --out "$out/small-$t"
  # 3. dann_mnist from scratch on the same labels (same @per-class/@seed draws)
  IFS=, read -ra B <<< "$budgets"; IFS=, read -ra S <<< "$seeds"
  for n in "${B[@]}"; do
    epochs=$(( 16000 / (10 * n) )); [ "$epochs" -lt 20 ] && epochs=20
    for s in "${S[@]}"; do
      [ -f "$out/scratch-$t-n$n-s$s/result.json" ] && continue
      "$g" train --model dann_mnist --data "${TRAIN[$t]}@per-class=$n@seed=$s" --test "${TEST[$t]}" \
        --optimizer adam --lr 1e-3 --weight-decay 5e-4 --schedule cosine --epochs "$epochs" --batch-size 32 \
        --seed "$s" --threads "$threads" --quiet --out "$out/scratch-$t-n$n-s$s" --resume
    done
  done
done

[ -n "${BASELINES_ONLY:-}" ] && exit 0
# 4. Fine-tuning the upper stages at 100 labels per class: stages up to block_12 frozen,
#    block_13..last_conv trained at 0.1x, a new linear head on the globally averaged
#    last_conv features; 10% of the labelled images held out for early stopping.
IFS=, read -ra FS <<< "$ft_seeds"
for t in fmnist59 mnistm; do
  for s in "${FS[@]}"; do
    [ -f "$out/finetune-$t-s$s/result.json" ] && continue
    "$g" finetune --model "$model" --channels 3 --preprocess "$pre" --cut last_conv --head-pool avg \
      --data "${TRAIN[$t]}@per-class=100@seed=$s" --val-split 0.1 --test "${TEST[$t]}" \
      --freeze-through block_12 --lr-mult 'block_1*=0.1,last_conv=0.1' \
      --optimizer sgd --lr 0.01 --momentum 0.9 --epochs 15 --batch-size 32 --seed "$s" \
      --threads "$threads" --quiet --out "$out/finetune-$t-s$s" --resume || echo "finetune $t seed $s failed"
  done
done

# 5. LogME / LEEP against the linear probe, per stage, on the real network (100 labels/class)
for t in fmnist59 mnistm; do
  [ -f "$out/layers-$t/results.json" ] || "$g" study layers --model "$model" --channels 3 --preprocess "$pre" \
    --layers "${layers#input,}" --train "${TRAIN[$t]}" --test "${TEST[$t]}" --labels-per-class 100 \
    --seeds 1,2,3 --threads "$threads" --out "$out/layers-$t"
done

/usr/bin/python3 "$here/scripts/results/summarize_pretrained.py" "$out" | tee "$out/summary.md"
