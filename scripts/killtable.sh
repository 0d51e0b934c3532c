#!/usr/bin/env bash
# kill -9 at chosen moments of every training verb, then --resume: is the final model the
# same, byte for byte, as an uninterrupted run's, and are the metrics.jsonl rows the same
# (timing fields aside)? Prints a Markdown table for docs/RELIABILITY.md.
#   scripts/killtable.sh [GRAFT_BINARY]      (default build/graft; needs the MNIST cache)
# The kills use graft's fault injection (environment, for tests only):
# GRAFT_TEST_KILL_AFTER_STEP=N raises SIGKILL after optimizer step N, GRAFT_TEST_KILL_IN_CHECKPOINT=N
# inside the N-th checkpoint write (the previous checkpoint renamed aside, the new one not
# yet written). Every run: mlp:32, 256 examples, batch 32 (8 steps an epoch), 2 epochs,
# a checkpoint every 3 steps besides each epoch's, 1 thread.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
graft="$(realpath "${1:-$here/build/graft}")"
W="$(mktemp -d /tmp/graft-killtable-XXXXXX)"
trap 'rm -rf "$W"' EXIT
common=(--epochs 2 --batch-size 32 --checkpoint-every 3 --threads 1 --workers 1 --quiet)
"$graft" train --model mlp:32 --data mnist:train@limit=256 "${common[@]}" --out "$W/base" > /dev/null 2>&1 ||
  { echo "could not train the base model (is the MNIST cache there? scripts/fetch_data.sh)"; exit 1; }
declare -A args model_of
args[train]="train --model mlp:32 --data mnist:train@limit=256"
args[finetune]="finetune --model $W/base/model.ckpt --data mnist:test@limit=256 --val-split 0"
args[adapt]="adapt --method dann --model mlp:32 --source mnist:train@limit=284 --target mnist:test@limit=256 --seeds 1"
args[pretrain]="pretrain --task rotation --model mlp:32 --data mnist:train@limit=256"
args[semisup]="semisup --model mlp:32 --labelled mnist:train@per-class=26 --unlabelled mnist:test@limit=128@unlabelled --mu 1 --weak random-crop=28:2 --strong random-crop=28:2,cutout=8"
for v in train finetune pretrain semisup; do model_of[$v]=model.ckpt; done
model_of[adapt]=seed-1/model.ckpt
rows() { /usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    for k in ("seconds", "images_per_s"): j.pop(k, None)
    print(json.dumps(j, sort_keys=True))' "$1" 2>/dev/null; }
echo "| verb | kills | exits of the killed runs | model after --resume | metrics.jsonl rows |"
echo "|---|---|---|---|---|"
for v in train finetune adapt pretrain semisup; do
  read -ra a <<< "${args[$v]}"
  "$graft" "${a[@]}" "${common[@]}" --out "$W/$v-straight" > /dev/null 2>&1 || { echo "| $v | straight run failed | | | |"; continue; }
  m=${model_of[$v]}
  metrics="$W/$v-straight/${m%model.ckpt}metrics.jsonl"
  for plan in "GRAFT_TEST_KILL_AFTER_STEP=5" "GRAFT_TEST_KILL_IN_CHECKPOINT=3" \
              "GRAFT_TEST_KILL_AFTER_STEP=4 GRAFT_TEST_KILL_AFTER_STEP=13"; do
    out="$W/$v-$(echo "$plan" | tr -dc 'A-Z0-9' | tail -c 12)"
    codes=""; resume=()
    for kill in $plan; do
      env "$kill" "$graft" "${a[@]}" "${common[@]}" "${resume[@]}" --out "$out" > /dev/null 2>&1
      codes+="$? "; resume=(--resume)
    done
    "$graft" "${a[@]}" "${common[@]}" --resume --out "$out" > /dev/null 2>&1; rc=$?
    same="differs"; [ $rc -eq 0 ] && cmp -s "$out/$m" "$W/$v-straight/$m" && same="byte-identical"
    [ $rc -ne 0 ] && same="resume failed (exit $rc)"
    r="differ"; [ "$(rows "$out/${m%model.ckpt}metrics.jsonl")" = "$(rows "$metrics")" ] && r="equal"
    kills="$(echo "$plan" | sed 's/GRAFT_TEST_KILL_AFTER_STEP=/after step /g; s/GRAFT_TEST_KILL_IN_CHECKPOINT=/inside checkpoint write /g; s/ after/, then after/g')"
    echo "| $v | $kills | ${codes% } | $same | $r |"
  done
done
