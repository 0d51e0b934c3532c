#!/usr/bin/env bash
# Why DAN (MK-MMD) collapsed on MNIST -> MNIST-M (docs/RESULTS.md): `graft adapt --method mmd`
# on a 10k-source / 10k-target subset, 4 epochs, for each tap layer and trade-off given,
# with the binary in GRAFT (run it once with a build from before the change, once after).
# Each run's metrics.jsonl has the MMD value per epoch (loss_adapt), the held-out source
# accuracy and the oracle target accuracy; the summary line prints the last and the
# IM-chosen epoch's target accuracy.
# Usage: GRAFT=build/graft TAG=after scripts/results/mmd_probe.sh [OUT]
# Environment: TAPS (flatten fc1 fc2), TRADEOFFS (1 0.1), SEEDS (1), EPOCHS (4), LIMIT (10000).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/mmd_probe}/${TAG:-after}"
limit="${LIMIT:-10000}"
mkdir -p "$out"
[ -f "${GRAFT_DATA:-$HOME/.cache/graft}/mnistm/t10k-images-idx4-ubyte" ] || "$g" data make mnistm
for tap in ${TAPS:-flatten fc1 fc2}; do
  for t in ${TRADEOFFS:-1 0.1}; do
    d="$out/tap-$tap-tradeoff-$t"
    [ -f "$d/summary.json" ] || "$g" adapt --method mmd --model dann_mnist --channels 3 --tap "$tap" --trade-off "$t" \
      --source "mnist:train@limit=$limit" --target "mnistm:train@limit=$limit" --target-test mnistm:test \
      --epochs "${EPOCHS:-4}" --batch-size 64 --lr 0.01 --seeds "${SEEDS:-1}" --threads 1 --quiet --out "$d" > /dev/null
    /usr/bin/python3 - "$d" "$tap" "$t" <<'PY'
import glob, json, sys
d, tap, t = sys.argv[1:]
for f in sorted(glob.glob(d + "/seed-*/metrics.jsonl")):
    e = [json.loads(l) for l in open(f)]
    print(f"tap {tap:8s} trade-off {t:4s} {f.split('/')[-2]}: mmd per epoch " +
          " ".join(f"{x['loss_adapt']:.4f}" for x in e) + "; target acc per epoch " +
          " ".join(f"{100 * x['oracle_target_acc']:.1f}" for x in e) + "; source val last " +
          f"{100 * e[-1]['source_val_acc']:.1f}")
PY
  done
done
