#!/usr/bin/env bash
# Linear SVM fit on features made by graft: 'graft linear fit --C 1' (z-scored features,
# squared hinge) vs scikit-learn StandardScaler + LinearSVC(C=1, dual=True) on the same .npy
# files, measured in one run, alternating, best of N (lowest fit seconds).
#   ratio = sklearn fit s / graft fit s; also both test accuracies and their difference.
# Features: layer SVM_LAYER (default fc1) of model SVM_MODEL (default dann_mnist; a zoo name,
# TorchScript file or graft checkpoint), 1 input channel, on Fashion-MNIST classes 5-9
# (1000 training images per class, all test images of those classes).
# Pooling SVM_POOL (default flatten). The default model is untrained; docs/RESULTS.md uses
# the trained source network of scripts/results/offtheshelf.sh.
# usage: [SVM_MODEL=...] [SVM_LAYER=...] [SVM_POOL=...] bench/svm_fit.sh [REPEATS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"
model="${SVM_MODEL:-dann_mnist}"; layer="${SVM_LAYER:-fc1}"; pool="${SVM_POOL:-flatten}"
# jfield FILE KEY: print a field of a JSON file (which may span several lines)
jfield() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
export GRAFT_NO_BLAS_WARNING=1
"$build/graft" extract --model "$model" --layers "$layer" --pool "$pool" --channels 1 \
  --data fashion-mnist:train@classes=5-9@per-class=1000@seed=1 --out "$tmp/train.npy" >&2
"$build/graft" extract --model "$model" --layers "$layer" --pool "$pool" --channels 1 \
  --data fashion-mnist:test@classes=5-9 --out "$tmp/test.npy" >&2
fg=(); fs=(); ag=""; as=""; rows=""; dim=""
for i in $(seq "$n"); do
  rm -f "$tmp/g.lin" "$tmp/g.json" "$tmp/ge.json"
  "$build/graft" linear fit --features "$tmp/train.npy" --C 1 --out "$tmp/g.lin" --report "$tmp/g.json" >/dev/null
  fg+=("$(jfield "$tmp/g.json" fit_seconds)")
  "$build/graft" linear eval --classifier "$tmp/g.lin" --features "$tmp/test.npy" --json "$tmp/ge.json" >/dev/null
  ag="$(jfield "$tmp/ge.json" accuracy)"
  out="$("$py" "$here/bench/py/linearsvc_fit.py" --train "$tmp/train.npy" --train-labels "$tmp/train.labels.npy" \
    --test "$tmp/test.npy" --test-labels "$tmp/test.labels.npy" --C 1 | tail -n 1)"
  fs+=("$(field "$out" fit_seconds)"); as="$(field "$out" test_accuracy)"
  rows="$(field "$out" train_rows)"; dim="$(field "$out" dim)"
done
bg=$(min "${fg[@]}"); bs=$(min "${fs[@]}")
pct() { "$py" -c 'import sys; print("%.2f" % (100 * float(sys.argv[1])))' "$1"; }
diff=$("$py" -c 'import sys; print("%+.2f" % (100 * (float(sys.argv[1]) - float(sys.argv[2]))))' "$ag" "$as")
echo "linear SVM fit, C=1 ($model $layer features, $rows x $dim, Fashion-MNIST classes 5-9; s, best of $n): graft $bg  sklearn $bs"
echo "  speed-up vs sklearn $(ratio "$bs" "$bg")x"
echo "  test accuracy: graft $(pct "$ag")%  sklearn $(pct "$as")%  (graft - sklearn: $diff points)"
echo "  all graft: ${fg[*]}"; echo "  all sklearn: ${fs[*]}"
