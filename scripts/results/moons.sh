#!/usr/bin/env bash
# Evidence of the adaptation issue on the toy problem of Ganin et al. (JMLR 2016): two
# moons, target rotated by 30 degrees. Source-only vs DANN, 5 seeds each, the same
# network (MLP 64-64, the domain losses on its last hidden layer), SGD 0.05 with the
# paper's annealing, 200 epochs, batch 32 per domain; the checkpoint is chosen by information
# maximisation on the unlabelled target (the default --select); the summary also
# shows what the other label-free criteria would have chosen. Target test labels give the
# oracle numbers only. Then one plot with both decision boundaries over the target test points.
# Usage: scripts/results/moons.sh [OUT]   (default runs/moons)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/moons}"
mkdir -p "$out"
"$g" data make moons --n 300 --seed 0 --out "$out/source" >/dev/null
"$g" data make moons --n 300 --seed 0 --rotate 30 --out "$out/target" >/dev/null
for m in source-only dann; do
  "$g" adapt --method "$m" --model mlp:64,64 --preprocess '' \
    --source "npy:$out/source/train_x.npy,$out/source/train_y.npy" \
    --target "npy:$out/target/train_x.npy" \
    --target-test "npy:$out/target/test_x.npy,$out/target/test_y.npy" \
    --epochs 200 --batch-size 32 --lr 0.05 --seeds 1,2,3,4,5 --threads 1 --quiet --out "$out/$m" | tail -n 1
done
# Decision boundaries of seed 1 of each method on a grid around the target points.
/usr/bin/python3 - "$out" <<'PY'
import sys, numpy as np
out = sys.argv[1]
t = np.load(f"{out}/target/test_x.npy")
lo, hi = t.min(0) - 0.5, t.max(0) + 0.5
xs, ys = np.linspace(lo[0], hi[0], 160), np.linspace(lo[1], hi[1], 120)
grid = np.array([[x, y] for y in ys for x in xs], np.float32)
np.save(f"{out}/grid.npy", grid)
PY
for m in source-only dann; do
  "$g" predict --model "$out/$m/seed-1/model.ckpt" --data "npy:$out/grid.npy" --out "$out/$m/grid_pred.csv"
done
/usr/bin/python3 "$here/scripts/results/plot_boundaries.py" "$out" > "$out/boundaries.svg"
echo "plot: $out/boundaries.svg"
/usr/bin/python3 "$here/scripts/results/summarize_adapt.py" "$out"
