#!/usr/bin/env bash
# The source networks of the transfer experiments (off-the-shelf, fine-tuning): the DANN
# paper's MNIST architecture (dann_mnist, gray input) trained 10 epochs on Fashion-MNIST
# classes 0-4 and on MNIST. Resumable; skips finished runs.
# Usage: scripts/results/source_models.sh OUT   (writes OUT/source-fmnist04, OUT/source-mnist)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="$1"
train_source() {  # NAME DATA TEST
  [ -f "$out/source-$1/result.json" ] && return 0
  "$g" train --model dann_mnist --data "$2" --test "$3" --optimizer adam --lr 1e-3 --schedule cosine \
    --epochs 10 --batch-size 128 --seed 1 --threads "${THREADS:-2}" --quiet --out "$out/source-$1" --resume
}
train_source fmnist04 "fashion-mnist:train@classes=0-4" "fashion-mnist:test@classes=0-4"
train_source mnist mnist:train mnist:test
