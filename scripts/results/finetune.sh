#!/usr/bin/env bash
# Evidence of the fine-tuning issue (docs/RESULTS.md, "Fine-tuning"): the lecture's
# trade-off between freezing and fine-tuning, measured. Source: dann_mnist trained on
# Fashion-MNIST classes 0-4 (scripts/results/source_models.sh). Target: Fashion-MNIST
# classes 5-9 with 10, 100 and 1000 labels per class, seeds 1-5. Every fine-tuning
# variant cuts the source after fc2, adds a new linear head, trains with Adam 1e-3
# (cosine), batch 32, a 10% validation split carved from the labelled images, early
# stopping on validation loss (best weights restored) and is tested once on all 5000
# test images of classes 5-9.
# Usage: scripts/results/finetune.sh [OUT]   (default runs/finetune; resumable)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/finetune}"
seeds="${SEEDS:-1,2,3,4,5}"
budgets="${BUDGETS:-10,100,1000}"
mkdir -p "$out"
"$here/scripts/results/source_models.sh" "$here/runs/offtheshelf"
src="$here/runs/offtheshelf/source-fmnist04/model.ckpt"
target="fashion-mnist:train@classes=5-9"
target_test="fashion-mnist:test@classes=5-9"

# method name -> model and policy options
declare -A M=(
  [scratch]="--model dann_mnist"
  [head-only]="--model $src --freeze-through fc2"
  [freeze-fc1]="--model $src --freeze-through fc1"
  [freeze-pool2]="--model $src --freeze-through pool2"
  [freeze-pool1]="--model $src --freeze-through pool1"
  [full]="--model $src"
  [discriminative]="--model $src --layer-decay 0.5"
  [l2sp]="--model $src --l2sp-alpha 0.1 --l2sp-beta 0.01"
)
IFS=, read -ra B <<< "$budgets"; IFS=, read -ra S <<< "$seeds"
for n in "${B[@]}"; do
  case "$n" in 10) epochs=100; patience=10;; 100) epochs=40; patience=6;; *) epochs=15; patience=4;; esac
  for s in "${S[@]}"; do
    for m in scratch head-only freeze-fc1 freeze-pool2 freeze-pool1 full discriminative l2sp; do
      dir="$out/$m-n$n-s$s"
      [ -f "$dir/result.json" ] && continue
      # shellcheck disable=SC2086
      "$g" finetune ${M[$m]} --cut fc2 --data "$target@per-class=$n@seed=$s" --test "$target_test" \
        --optimizer adam --lr 1e-3 --schedule cosine --epochs "$epochs" --patience "$patience" --batch-size 32 \
        --seed "$s" --threads "${THREADS:-2}" --quiet --out "$dir" > "$dir.log" 2>&1 || { cat "$dir.log"; exit 1; }
      echo "$m n=$n seed=$s: $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["test"]["accuracy"])' "$dir/result.json")"
    done
  done
done
# The off-the-shelf SVM on the best layer of issue 3 (pool2), same budgets and seeds.
[ -f "$out/offtheshelf/results.json" ] || "$g" transfer --recipe offtheshelf --model "$src" --layers pool2 \
  --pool flatten --train "$target" --test "$target_test" --labels-per-class "$budgets" --seeds "$seeds" \
  --threads 2 --quiet --out "$out/offtheshelf"

/usr/bin/python3 "$here/scripts/results/summarize_finetune.py" "$out" | tee "$out/summary.md"
