#!/usr/bin/env bash
# Feature extraction speed: ResNet-18 up to the global average pool ('avgpool', 512 features),
# inference mode, 224x224 RGB, batch 16, 2 threads, same weights (a seeded random ResNet-18
# exported to TorchScript). graft's bench_extract vs Python PyTorch running torchvision's
# resnet18 eagerly, as is and with graft's allocator settings through GLIBC_TUNABLES
# ("tuned"), measured in one run, alternating, best of N (highest images/s).
#   ratio = graft images/s / PyTorch images/s
# Also graft's effective GFLOP/s (images/s x GFLOP per image) and its fraction of the
# machine's float32 matrix-product peak on 2 threads, as measured by bench_extract.
# usage: bench/extract_speed.sh [REPEATS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"
[ -x "$build/bench/bench_extract" ] || { echo "build bench_extract first: scripts/build.sh" >&2; exit 1; }
max() { "$py" -c 'import sys; print(max(float(v) for v in sys.argv[1:]))' "$@"; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
model="$tmp/resnet18.pt"
"$py" "$here/bench/py/export_resnet18.py" "$model" --seed 0 >/dev/null
args=(--batch 16 --iters 10 --threads 2 --size 224)
g=(); p=(); t=(); gf=(); peak=()
for i in $(seq "$n"); do
  out="$(GRAFT_NO_BLAS_WARNING=1 "$build/bench/bench_extract" --model "$model" --layers avgpool "${args[@]}" | tail -n 1)"
  g+=("$(field "$out" images_per_s)"); gf+=("$(field "$out" gflops_per_image)"); peak+=("$(field "$out" matmul_gflops)")
  p+=("$(field "$("$py" "$here/bench/py/extract_speed.py" --model "$model" --mode eager "${args[@]}" | tail -n 1)" images_per_s)")
  t+=("$(field "$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/extract_speed.py" --model "$model" --mode eager "${args[@]}" | tail -n 1)" images_per_s)")
done
bg=$(max "${g[@]}"); bp=$(max "${p[@]}"); bt=$(max "${t[@]}")
gflop=${gf[0]}; bpeak=$(max "${peak[@]}")
eff=$("$py" -c 'import sys; print("%.1f" % (float(sys.argv[1]) * float(sys.argv[2])))' "$bg" "$gflop")
frac=$("$py" -c 'import sys; print("%.0f%%" % (100 * float(sys.argv[1]) / float(sys.argv[2])))' "$eff" "$bpeak")
echo "ResNet-18 avgpool features (224x224, batch 16, 2 threads; images/s, best of $n): graft $bg  pytorch $bp  pytorch-tuned $bt"
echo "  speed-up vs pytorch $(ratio "$bg" "$bp")x, vs pytorch-tuned $(ratio "$bg" "$bt")x"
echo "  graft effective $eff GFLOP/s ($gflop GFLOP/image) = $frac of the measured 2048x2048 float32 matmul peak $bpeak GFLOP/s"
echo "  all graft: ${g[*]}"; echo "  all pytorch: ${p[*]}"; echo "  all pytorch-tuned: ${t[*]}"
echo "  all matmul peaks (GFLOP/s): ${peak[*]}"
