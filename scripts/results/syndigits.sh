#!/usr/bin/env bash
# MNIST <-> SynDigits-style digits (graft data make syndigits: digits drawn from the installed
# fonts, test fonts of other families), both directions, with every adaptation method of the
# registry and the protocol of scripts/results/mnistm.sh (SGD 0.01 momentum 0.9 with the
# paper's annealing, batch 64 per domain, trade-off 1, the default label-free selection:
# information maximisation within the source band), plus training on the labelled target as
# the upper bound. SHOT and TENT are source-free: each seed adapts that seed's source-only
# model (TENT: the BatchNorm network's) and reads only the target. MMD taps fc1 (graft's
# default for the DANN digit networks). To fit a shared 2-core machine the source and target
# training sets are cut to their first LIMIT images and runs last EPOCHS epochs; the test sets
# are whole (MNIST 10000, SynDigits 9000). Target test labels only give the reported and
# oracle columns, never a choice.
# Per direction the network, the source size and the epochs can differ (the source recipe is
# chosen on held-out SOURCE accuracy only; docs/RESULTS.md says which and why):
#   MODEL_MNIST_SYNDIGITS (dann_mnist), LIMIT_MNIST_SYNDIGITS, EPOCHS_MNIST_SYNDIGITS
#   MODEL_SYNDIGITS_MNIST (dann_mnist_bn), LIMIT_SYNDIGITS_MNIST (25000), EPOCHS_SYNDIGITS_MNIST
# (the others default to LIMIT / EPOCHS). AdaBN always uses dann_mnist_bn. Train on target uses
# the recipe of the direction whose source is that domain (the recipe that trains on it):
# for MNIST -> SynDigits, dann_mnist_bn on all 25000 SynDigits images.
# Usage: scripts/results/syndigits.sh [OUT]   (default runs/syndigits; skips finished runs)
# Environment: SEEDS (1,2,3), EPOCHS (3), LIMIT (10000), METHODS, DIRECTIONS
# (mnist-syndigits syndigits-mnist), THREADS (1).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
out="${1:-$here/runs/syndigits}"
seeds="${SEEDS:-1,2,3}"
threads="${THREADS:-1}"
mkdir -p "$out"
[ -f "${GRAFT_DATA:-$HOME/.cache/graft}/syndigits/t10k-images-idx4-ubyte" ] || "$g" data make syndigits --seed 0
IFS=, read -ra S <<< "$seeds"
recipe() {  # recipe WHAT SOURCE_DOMAIN: the network, training-set size or epochs for that source
  local var="${1}_$(echo "$2" | tr a-z A-Z)_$(echo "$2" | sed 's/^mnist$/SYNDIGITS/;s/^syndigits$/MNIST/')"
  case "$1:$2" in
    MODEL:syndigits) echo "${!var:-dann_mnist_bn}" ;;
    MODEL:*) echo "${!var:-dann_mnist}" ;;
    LIMIT:syndigits) echo "${!var:-25000}" ;;
    LIMIT:*) echo "${!var:-${LIMIT:-10000}}" ;;
    EPOCHS:*) echo "${!var:-${EPOCHS:-3}}" ;;
  esac
}
for dir in ${DIRECTIONS:-mnist-syndigits syndigits-mnist}; do
  src="${dir%%-*}" tgt="${dir#*-}"
  net="$(recipe MODEL "$src")" limit="$(recipe LIMIT "$src")" epochs="$(recipe EPOCHS "$src")"
  tot_net="$(recipe MODEL "$tgt")" tot_limit="$(recipe LIMIT "$tgt")" tot_epochs="$(recipe EPOCHS "$tgt")"
  d="$out/$dir"
  mkdir -p "$d"
  echo "== $src -> $tgt: $net, first $limit training images per domain, $epochs epochs; train on target: $tot_net, $tot_limit, $tot_epochs"
  common=(--channels 3 --target "$tgt:train@limit=$limit" --target-test "$tgt:test" --epochs "$epochs"
          --batch-size 64 --lr 0.01 --threads "$threads" --quiet --resume)
  for m in ${METHODS:-source-only dann cdan coral mmd self-train mcc mdd adabn shot tent train-on-target}; do
    case "$m" in
      train-on-target)  # the target's own recipe (as a source), trained on the labelled target
        for s in "${S[@]}"; do
          [ -f "$d/train-on-target/seed-$s/result.json" ] && continue
          "$g" train --model "$tot_net" --channels 3 --data "$tgt:train@limit=$tot_limit" --test "$tgt:test" \
            --optimizer sgd --lr 0.01 --momentum 0.9 --schedule inv --epochs "$tot_epochs" --batch-size 64 --seed "$s" \
            --threads "$threads" --quiet --out "$d/train-on-target/seed-$s" --resume > /dev/null
        done ;;
      shot|tent)  # source-free: each seed adapts that seed's source-only model (tent: a BatchNorm one)
        sdir=source-only model="$net"
        if [ "$m" = tent ] && [ "$net" != dann_mnist_bn ]; then sdir=source-only-bn model=dann_mnist_bn; fi
        for s in "${S[@]}"; do
          [ -f "$d/$m/seed-$s/result.json" ] && continue
          if [ ! -f "$d/$sdir/seed-$s/model.ckpt" ]; then
            "$g" adapt --method source-only --model "$model" --source "$src:train@limit=$limit" "${common[@]}" \
              --seeds "$s" --out "$d/$sdir" > /dev/null
          fi
          "$g" adapt --method "$m" --model "$d/$sdir/seed-$s/model.ckpt" "${common[@]}" --seeds "$s" \
            --out "$d/$m" | tail -n 1
        done ;;
      *)
        [ -f "$d/$m/summary.json" ] && continue
        model="$net"; [ "$m" = adabn ] && model=dann_mnist_bn
        "$g" adapt --method "$m" --model "$model" --source "$src:train@limit=$limit" "${common[@]}" \
          --seeds "$seeds" --out "$d/$m" | tail -n 1 ;;
    esac
  done
  echo "== $src -> $tgt"
  /usr/bin/python3 "$here/scripts/results/summarize_adapt.py" "$d"
done
