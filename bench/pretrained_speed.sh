#!/usr/bin/env bash
# Extraction speed of the real MobileNetV2 (converted from nsfwjs by scripts/fetch_models.sh):
# features up to its 'pool' stage (1280 values), 224x224 RGB, batch 16, 1 thread, the same
# TorchScript file in both: graft's bench_extract (children frozen + optimised for inference)
# against Python PyTorch running the children (as loaded, and frozen + optimize_for_inference),
# alternating, best of N. ratio = graft images/s / PyTorch images/s. Needs an idle machine.
# usage: bench/pretrained_speed.sh [REPEATS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"
model="${MODEL:-$cache/models/mobilenet_v2.pt}"
[ -s "$model" ] || { echo "no $model: run scripts/fetch_models.sh" >&2; exit 1; }
[ -x "$build/bench/bench_extract" ] || { echo "build bench_extract first: scripts/build.sh" >&2; exit 1; }
max() { "$py" -c 'import sys; print(max(float(v) for v in sys.argv[1:]))' "$@"; }
g=(); p=(); f=()
for i in $(seq "$n"); do
  g+=("$(field "$(GRAFT_NO_BLAS_WARNING=1 "$build/bench/bench_extract" --model "$model" --layers pool --batch 16 \
      --iters 10 --threads 1 --size 224 | tail -n 1)" images_per_s)")
  p+=("$(field "$("$py" "$here/bench/py/extract_chain.py" --model "$model" --layer pool --threads 1 | tail -n 1)" images_per_s)")
  f+=("$(field "$("$py" "$here/bench/py/extract_chain.py" --model "$model" --layer pool --threads 1 --freeze | tail -n 1)" images_per_s)")
done
bg=$(max "${g[@]}"); bp=$(max "${p[@]}"); bf=$(max "${f[@]}")
echo "MobileNetV2 'pool' features (224x224, batch 16, 1 thread; images/s, best of $n): graft $bg  pytorch $bp  pytorch-frozen $bf"
echo "  speed-up vs pytorch $(ratio "$bg" "$bp")x, vs pytorch-frozen $(ratio "$bg" "$bf")x"
echo "  all graft: ${g[*]}"; echo "  all pytorch: ${p[*]}"; echo "  all pytorch-frozen: ${f[*]}"
echo "  load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) (nproc $(nproc))"
