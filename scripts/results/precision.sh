#!/usr/bin/env bash
# Training in bf16 (autocast) against fp32: the same runs, seeds and data, only --precision
# differs; 3 seeds. (1) `train`: dann_mnist on MNIST and on Fashion-MNIST (first LIMIT
# training images, EPOCHS epochs, SGD 0.01 momentum 0.9, batch 64), whole test sets.
# (2) `finetune`: each seed's fp32 MNIST model, new head, on 100 Fashion-MNIST images per
# class (5 epochs, Adam 0.001, 10% held out for early stopping), whole Fashion-MNIST test set.
# (3) `adapt --method dann`: MNIST -> MNIST-M-style, first 10 000 of each, 3 epochs, label-free
# choice; the MNIST-M test set gives the (oracle) figure.
# Usage: scripts/results/precision.sh [OUT]   (default runs/precision; finished runs are reused)
# Environment: SEEDS (1 2 3), LIMIT (20000), EPOCHS (2), THREADS (1), GRAFT (build/graft).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/precision}"
limit="${LIMIT:-20000}"; epochs="${EPOCHS:-2}"; threads="${THREADS:-1}"
for data in mnist fashion-mnist; do
  for p in fp32 bf16; do
    for s in ${SEEDS:-1 2 3}; do
      d="$out/$data/$p/seed-$s"
      [ -f "$d/result.json" ] && continue
      "$g" train --model dann_mnist --data "$data:train@limit=$limit" --test "$data:test" --optimizer sgd --lr 0.01 \
        --momentum 0.9 --epochs "$epochs" --batch-size 64 --seed "$s" --threads "$threads" --precision "$p" --quiet \
        --out "$d" --resume > /dev/null
    done
  done
done
for p in fp32 bf16; do
  for s in ${SEEDS:-1 2 3}; do
    d="$out/finetune/$p/seed-$s"
    [ -f "$d/result.json" ] || "$g" finetune --model "$out/mnist/fp32/seed-$s/model.ckpt" \
      --data fashion-mnist:train@per-class=100@seed=$s --test fashion-mnist:test --epochs 5 --seed "$s" \
      --threads "$threads" --precision "$p" --quiet --out "$d" --resume > /dev/null
    d="$out/dann/$p"
    [ -f "$d/seed-$s/result.json" ] || "$g" adapt --method dann --model dann_mnist --channels 3 \
      --source mnist:train@limit=10000 --target mnistm:train@limit=10000 --target-test mnistm:test --epochs 3 \
      --batch-size 64 --lr 0.01 --seeds "$s" --threads "$threads" --precision "$p" --quiet --out "$d" --resume > /dev/null
  done
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys, pathlib
root = pathlib.Path(sys.argv[1])
print("| data | precision | test accuracy (%), mean ± std | seeds | s per epoch (mean) |")
print("|---|---|---|---|---|")
def acc_of(j):
    if "test" in j: return j["test"]["accuracy"]
    return j["oracle"]["selected_target_acc"]  # adapt: the label-free choice, scored by the target labels
for data in ("mnist", "fashion-mnist", "finetune", "dann"):
    for p in ("fp32", "bf16"):
        acc, sec = [], []
        for r in sorted((root / data / p).glob("seed-*/result.json")):
            j = json.loads(r.read_text())
            acc.append(100 * acc_of(j))
            rows = [json.loads(l) for l in (r.parent / "metrics.jsonl").read_text().splitlines()]
            sec += [x["seconds"] for x in rows if x.get("event") == "epoch"]
        if acc:
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            print(f"| {data} | {p} | {statistics.mean(acc):.2f} ± {sd:.2f} | {len(acc)} | {statistics.mean(sec):.1f} |")
PY
