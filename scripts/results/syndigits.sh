#!/usr/bin/env bash
# MNIST <-> SynDigits-style digits (graft data make syndigits: digits drawn from the installed
# fonts, test fonts of other families), both directions, with the adaptation methods of
# scripts/results/mnistm.sh and its protocol (dann_mnist on RGB input, AdaBN on dann_mnist_bn,
# SGD 0.01 momentum 0.9 with the paper's annealing, batch 64 per domain, trade-off 1, the
# default label-free selection: information maximisation within the source band), plus
# training on the labelled target as the upper bound. To fit a shared 2-core machine the
# source and target training sets are cut to their first LIMIT images (default 10000) and
# runs last EPOCHS (default 3) epochs; the test sets are whole (MNIST 10000, SynDigits 9000).
# Target test labels only give the reported and oracle columns, never a choice.
# Usage: scripts/results/syndigits.sh [OUT]   (default runs/syndigits; skips finished runs)
# Environment: SEEDS (1,2,3), EPOCHS (3), LIMIT (10000), METHODS, DIRECTIONS
# (mnist-syndigits syndigits-mnist), THREADS (1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/syndigits}"
seeds="${SEEDS:-1,2,3}"
epochs="${EPOCHS:-3}"
limit="${LIMIT:-10000}"
threads="${THREADS:-1}"
mkdir -p "$out"
[ -f "${GRAFT_DATA:-$HOME/.cache/graft}/syndigits/t10k-images-idx4-ubyte" ] || "$g" data make syndigits --seed 0
IFS=, read -ra S <<< "$seeds"
for dir in ${DIRECTIONS:-mnist-syndigits syndigits-mnist}; do
  src="${dir%%-*}" tgt="${dir#*-}"
  d="$out/$dir"
  mkdir -p "$d"
  for m in ${METHODS:-source-only dann train-on-target cdan coral mmd self-train adabn}; do
    if [ "$m" = train-on-target ]; then
      for s in "${S[@]}"; do
        [ -f "$d/train-on-target/seed-$s/result.json" ] && continue
        "$g" train --model dann_mnist --channels 3 --data "$tgt:train@limit=$limit" --test "$tgt:test" \
          --optimizer sgd --lr 0.01 --momentum 0.9 --schedule inv --epochs "$epochs" --batch-size 64 --seed "$s" \
          --threads "$threads" --quiet --out "$d/train-on-target/seed-$s" --resume > /dev/null
      done
      continue
    fi
    [ -f "$d/$m/summary.json" ] && continue
    model=dann_mnist
    [ "$m" = adabn ] && model=dann_mnist_bn
    "$g" adapt --method "$m" --model "$model" --channels 3 --source "$src:train@limit=$limit" \
      --target "$tgt:train@limit=$limit" --target-test "$tgt:test" --epochs "$epochs" --batch-size 64 --lr 0.01 \
      --seeds "$seeds" --threads "$threads" --quiet --out "$d/$m" | tail -n 1
  done
  echo "== $src -> $tgt"
  /usr/bin/python3 "$here/scripts/results/summarize_adapt.py" "$d"
done
