#!/usr/bin/env bash
# Evidence of the learning-from-unlabelled-data issue (docs/RESULTS.md, "Learning from
# unlabelled data"). Target: Fashion-MNIST (all 10 classes) with 10 and 100 labels per class
# drawn per seed (@per-class=N@seed=S); the rest of the training images are the unlabelled
# set; test: the 10,000 test images. Network: the DANN paper's MNIST architecture (dann_mnist).
# Initialisations compared by a linear probe (linear SVM on pool1, pool2 and fc1 features, C by
# cross-validation on the labelled examples) and by fine-tuning (cut after fc2, new head,
# Adam, early stopping on a 10% validation split of the labelled examples):
#   random     untrained network
#   exemplar   graft pretrain --task exemplar on the unlabelled training images
#   rotation   graft pretrain --task rotation on the same images
#   mnist      supervised on MNIST (scripts/results/source_models.sh): another dataset
# and semi-supervised training (FixMatch-style) against supervised-only training with the
# same labels, steps and augmentation, from random initialisation.
# Usage: scripts/results/selfsup.sh [OUT]   (default runs/selfsup; resumable)
# Environment: SEEDS (1,2,3), BUDGETS (10,100), THREADS (2), SEMISUP_BUDGETS (10),
#              SEMISUP_EPOCHS (8).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/selfsup}"
seeds="${SEEDS:-1,2,3}"
budgets="${BUDGETS:-10,100}"
threads="${THREADS:-2}"
mkdir -p "$out"
"$here/scripts/results/source_models.sh" "$here/runs/offtheshelf"
train="fashion-mnist:train"
test="fashion-mnist:test"

# 1. Pretraining on the unlabelled images (labels of fashion-mnist:train are hidden from it).
[ -f "$out/rotation/result.json" ] || "$g" pretrain --task rotation --model dann_mnist --data "$train@unlabelled" \
  --epochs 4 --batch-size 128 --lr 0.05 --val-split 0.05 --seed 1 --threads "$threads" --quiet \
  --out "$out/rotation" --resume
[ -f "$out/exemplar/result.json" ] || "$g" pretrain --task exemplar --model dann_mnist --data "$train@unlabelled" \
  --classes 2000 --copies 16 --epochs 10 --batch-size 128 --lr 0.05 --seed 1 --threads "$threads" --quiet \
  --out "$out/exemplar" --resume

declare -A MODEL=(
  [random]="dann_mnist"
  [exemplar]="$out/exemplar/model.ckpt"
  [rotation]="$out/rotation/model.ckpt"
  [mnist]="$here/runs/offtheshelf/source-mnist/model.ckpt"
)
INITS="random exemplar rotation mnist"

# 2. Linear probe of each initialisation.
for i in $INITS; do
  [ -f "$out/probe-$i/results.json" ] && continue
  "$g" transfer --recipe offtheshelf --model "${MODEL[$i]}" --layers pool1,pool2,fc1 --pool flatten \
    --train "$train" --test "$test" --labels-per-class "$budgets" --seeds "$seeds" \
    --threads "$threads" --quiet --out "$out/probe-$i"
done

# 3. Fine-tuning of each initialisation (random: training from scratch).
IFS=, read -ra B <<< "$budgets"; IFS=, read -ra S <<< "$seeds"
for n in "${B[@]}"; do
  case "$n" in 10) epochs=100; patience=10;; *) epochs=40; patience=6;; esac
  for s in "${S[@]}"; do
    for i in $INITS; do
      dir="$out/finetune-$i-n$n-s$s"
      [ -f "$dir/result.json" ] && continue
      "$g" finetune --model "${MODEL[$i]}" --cut fc2 --data "$train@per-class=$n@seed=$s" --test "$test" \
        --optimizer adam --lr 1e-3 --schedule cosine --epochs "$epochs" --patience "$patience" --batch-size 32 \
        --seed "$s" --threads "$threads" --quiet --out "$dir" > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
      echo "finetune $i n=$n seed=$s: $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test"]["accuracy"])' "$dir/result.json")"
    done
  done
done

# 4. Semi-supervised (FixMatch-style) vs supervised-only on the same labels, same steps.
IFS=, read -ra SB <<< "${SEMISUP_BUDGETS:-10}"
for n in "${SB[@]}"; do
  for s in "${S[@]}"; do
    for m in supervised fixmatch; do
      dir="$out/semisup-$m-n$n-s$s"
      [ -f "$dir/semisup.json" ] && continue
      "$g" semisup --method "$m" --model dann_mnist --labelled "$train@per-class=$n@seed=$s" \
        --unlabelled "$train@unlabelled" --test "$test" --epochs "${SEMISUP_EPOCHS:-8}" --batch-size 32 --mu 7 \
        --seed "$s" --threads "$threads" --quiet --out "$dir" --resume > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
      echo "semisup $m n=$n seed=$s: $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test_accuracy"])' "$dir/semisup.json")"
    done
  done
done

/usr/bin/python3 "$here/scripts/results/summarize_selfsup.py" "$out" | tee "$out/summary.md"
