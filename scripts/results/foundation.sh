#!/usr/bin/env bash
# Accuracy evidence of the foundation issue (docs/RESULTS.md, "Source models").
#   1. the DANN paper's MNIST network on full MNIST (RGB input: digits replicated),
#      evaluated on MNIST and on the MNIST-M-style target (the domain gap);
#   2. resnet8 on Fashion-MNIST.
# Usage: scripts/results/foundation.sh [SEED]   (outputs in runs/)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
seed="${1:-1}"
out="$here/runs"
mkdir -p "$out"
[ -f "${GRAFT_DATA:-$HOME/.cache/graft}/mnistm/t10k-images-idx4-ubyte" ] || "$g" data make mnistm

"$g" train --model dann_mnist --channels 3 --data mnist:train --test mnist:test \
  --optimizer adam --lr 1e-3 --schedule cosine --epochs 10 --batch-size 128 \
  --seed "$seed" --threads 2 --out "$out/mnist_dann_s$seed" --resume
"$g" eval --model "$out/mnist_dann_s$seed/model.ckpt" --data mnist:test mnistm:test \
  --json "$out/mnist_dann_s$seed/eval.json"

"$g" train --model resnet8 --data fashion-mnist:train --test fashion-mnist:test \
  --optimizer sgd --lr 0.1 --momentum 0.9 --nesterov --weight-decay 5e-4 --schedule cosine \
  --epochs 12 --batch-size 128 --augment random-crop=28:2,hflip \
  --seed "$seed" --threads 2 --out "$out/fashion_resnet8_s$seed" --resume
