#!/usr/bin/env bash
# MNIST -> MNIST-M-style target with every adaptation method, 3 seeds, plus training on
# the labelled target as the upper bound. The DANN paper's MNIST network on RGB input,
# SGD with the paper's annealing, batch 64 per domain; the checkpoint of every method is
# chosen by information maximisation on the unlabelled target; target test labels give
# the oracle numbers only.
# Usage: scripts/results/mnistm.sh [OUT]   (default runs/mnistm; skips finished methods)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="$here/build/graft"
out="${1:-$here/runs/mnistm}"
seeds="${SEEDS:-1,2,3}"
epochs="${EPOCHS:-10}"
mkdir -p "$out"
[ -f "${GRAFT_DATA:-$HOME/.cache/graft}/mnistm/t10k-images-idx4-ubyte" ] || "$g" data make mnistm
for m in ${METHODS:-source-only dann cdan coral mmd self-train}; do
  [ -f "$out/$m/summary.json" ] && continue
  "$g" adapt --method "$m" --model dann_mnist --channels 3 --source mnist:train --target mnistm:train \
    --target-test mnistm:test --epochs "$epochs" --batch-size 64 --lr 0.01 --seeds "$seeds" \
    --threads 2 --quiet --out "$out/$m" | tail -n 1
done
IFS=, read -ra S <<< "$seeds"
for s in "${S[@]}"; do
  [ -f "$out/train-on-target/seed-$s/result.json" ] && continue
  "$g" train --model dann_mnist --data mnistm:train --test mnistm:test --optimizer sgd --lr 0.01 --momentum 0.9 \
    --schedule inv --epochs "$epochs" --batch-size 64 --seed "$s" --threads 2 --quiet \
    --out "$out/train-on-target/seed-$s" --resume > /dev/null
done
/usr/bin/python3 - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
def ms(v):
    return f"{100 * statistics.mean(v):.2f} ± {100 * (statistics.stdev(v) if len(v) > 1 else 0):.2f}"
rows = []
for m in ["source-only", "dann", "cdan", "coral", "mmd", "self-train"]:
    f = os.path.join(out, m, "summary.json")
    if not os.path.exists(f):
        continue
    runs = json.load(open(f))["runs"]
    rows.append((m, [r["selected_target_acc"] for r in runs], [r["oracle_best_acc"] for r in runs]))
tot = [json.load(open(f))["test"]["accuracy"] for f in glob.glob(os.path.join(out, "train-on-target", "seed-*", "result.json"))]
print("| method | MNIST-M-style test accuracy, selected by IM | oracle: best epoch |")
print("|---|---|---|")
for m, sel, best in rows:
    print(f"| {m} | {ms(sel)} | {ms(best)} |")
if tot:
    print(f"| train on target (upper bound) | {ms(tot)} | |")
src = [r for r in rows if r[0] == "source-only"]
if src and tot:
    lo, hi = statistics.mean(src[0][1]), statistics.mean(tot)
    for m, sel, _ in rows:
        print(f"{m}: closes {100 * (statistics.mean(sel) - lo) / (hi - lo):.0f}% of the gap")
PY
