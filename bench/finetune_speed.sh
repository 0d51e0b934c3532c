#!/usr/bin/env bash
# Fine-tuning speed: graft finetune vs Python PyTorch (Debian python3-torch), same network,
# same pretrained weights, same data, Adam 1e-3 at a constant rate, batch 64, 2 threads,
# 2 loader workers, measured in one run, alternating, best of N.
# The source is the DANN MNIST network trained 2 epochs on Fashion-MNIST classes 0-4
# (bench/py/make_source.py, TorchScript); both sides cut it after fc2, put a new 5-way
# linear head on top and fine-tune on Fashion-MNIST classes 5-9 (30,000 images).
#   1. one full fine-tuning epoch (every layer trains), data pipeline included: graft's
#      epoch seconds (metrics.jsonl) vs the idiomatic torchvision + DataLoader script
#      (bench/py/finetune.py --mode full): ratio = PyTorch s / graft s
#   2. conv1..fc1 frozen, 10 epochs, end to end: graft with its activation cache (the frozen
#      prefix runs once) vs the plain Python loop that reruns the frozen layers under
#      torch.no_grad() every epoch (finetune.py --mode frozen): ratio = PyTorch s / graft s,
#      and both test accuracies on Fashion-MNIST test classes 5-9.
#      graft's figure is the wall-clock time of the whole command: process start, model
#      load, the one-off cache pass, the 10 epochs and the test-set evaluation. PyTorch's is
#      only its training loop (first batch of epoch 1 to end of epoch 10; no start-up, no
#      model load, no test), so the ratio is conservative, i.e. in PyTorch's favour.
# graft tunes glibc's allocator at start-up (graft::tune_allocator); PyTorch is measured
# both as is (idiomatic) and with the same settings through GLIBC_TUNABLES ("tuned").
# usage: bench/finetune_speed.sh [REPEATS]   (roughly 3-7 minutes per repeat on 2 cores)
# FT_PER_CLASS=N (smoke tests only): train on N images per class on both sides.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
src="$tmp/source.pt"; root="$tmp/fmnist"   # root: torchvision's unpacked copy, made once
now() { date +%s.%N; }
minus() { "$py" -c 'import sys; print("%.3f" % (float(sys.argv[1]) - float(sys.argv[2])))' "$1" "$2"; }
# epoch_s METRICS [all]: seconds of the first "epoch" event, or with "all" their sum
epoch_s() {
  "$py" -c 'import json,sys
e=[json.loads(l) for l in open(sys.argv[1])]; s=[r["seconds"] for r in e if r.get("event")=="epoch"]
print(sum(s) if len(sys.argv)>2 else s[0])' "$@"
}
test_acc() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["test"]["accuracy"])' "$1"; }
first() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][0])' "$1" "$2"; }
mean() { "$py" -c 'import sys; v=[float(x) for x in sys.argv[1:]]; print("%.4f" % (sum(v)/len(v)))' "$@"; }

"$py" "$here/bench/py/make_source.py" "$src" --epochs 2 --threads 2 --data-root "$root" >/dev/null
data="fashion-mnist:train@classes=5-9"; small=()
if [ -n "${FT_PER_CLASS:-}" ]; then data+="@per-class=$FT_PER_CLASS"; small=(--per-class "$FT_PER_CLASS"); fi
common=(--model "$src" --cut fc2 --data "$data" --val-split 0 --batch-size 64
        --optimizer adam --lr 1e-3 --schedule constant --threads 2 --workers 2 --quiet)
pyargs=(--source "$src" --batch 64 --lr 1e-3 --threads 2 --workers 2 --data-root "$root" "${small[@]}")
graft() { GRAFT_NO_BLAS_WARNING=1 "$build/graft" finetune "$@" >/dev/null; }

# 1. one full fine-tuning epoch
full_g=(); full_p=(); full_t=()
for i in $(seq "$n"); do
  rm -rf "$tmp/full"
  graft "${common[@]}" --epochs 1 --out "$tmp/full"
  full_g+=("$(epoch_s "$tmp/full/metrics.jsonl")")
  full_p+=("$(first "$("$py" "$here/bench/py/finetune.py" "${pyargs[@]}" --mode full --epochs 1)" epoch_seconds)")
  full_t+=("$(first "$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/finetune.py" "${pyargs[@]}" --mode full --epochs 1)" epoch_seconds)")
done

# 2. frozen through fc1 (+ graft's cache), 10 epochs, end to end
fz_g=(); fz_gloop=(); fz_p=(); fz_t=(); acc_g=(); acc_p=(); acc_t=()
for i in $(seq "$n"); do
  rm -rf "$tmp/frozen"
  t0=$(now)
  graft "${common[@]}" --freeze-through fc1 --test "fashion-mnist:test@classes=5-9" --epochs 10 --out "$tmp/frozen"
  t1=$(now)
  fz_g+=("$(minus "$t1" "$t0")"); fz_gloop+=("$(epoch_s "$tmp/frozen/metrics.jsonl" all)")
  acc_g+=("$(test_acc "$tmp/frozen/result.json")")
  out="$("$py" "$here/bench/py/finetune.py" "${pyargs[@]}" --mode frozen --epochs 10)"
  fz_p+=("$(field "$out" total_seconds)"); acc_p+=("$(field "$out" test_accuracy)")
  out="$(GLIBC_TUNABLES=$tuned "$py" "$here/bench/py/finetune.py" "${pyargs[@]}" --mode frozen --epochs 10)"
  fz_t+=("$(field "$out" total_seconds)"); acc_t+=("$(field "$out" test_accuracy)")
done

fg=$(min "${full_g[@]}"); fp=$(min "${full_p[@]}"); ft=$(min "${full_t[@]}")
zg=$(min "${fz_g[@]}"); zp=$(min "${fz_p[@]}"); zt=$(min "${fz_t[@]}")
echo "full fine-tuning epoch, Fashion-MNIST 5-9 (s, best of $n): graft $fg  pytorch $fp  pytorch-tuned $ft"
echo "  speed-up vs pytorch $(ratio "$fp" "$fg")x, vs pytorch-tuned $(ratio "$ft" "$fg")x"
echo "  all graft: ${full_g[*]}"; echo "  all pytorch: ${full_p[*]}"; echo "  all pytorch-tuned: ${full_t[*]}"
echo "frozen through fc1, 10 epochs (s, best of $n): graft end-to-end with cache $zg  pytorch loop $zp  pytorch-tuned loop $zt"
echo "  speed-up vs pytorch $(ratio "$zp" "$zg")x, vs pytorch-tuned $(ratio "$zt" "$zg")x"
echo "  test accuracy (mean of $n): graft $(mean "${acc_g[@]}")  pytorch $(mean "${acc_p[@]}")  pytorch-tuned $(mean "${acc_t[@]}")"
echo "  all graft wall: ${fz_g[*]}"; echo "  all graft sum of epoch seconds (cache pass excluded): ${fz_gloop[*]}"
echo "  all pytorch: ${fz_p[*]}"; echo "  all pytorch-tuned: ${fz_t[*]}"
echo "  all test accuracies: graft ${acc_g[*]}; pytorch ${acc_p[*]}; pytorch-tuned ${acc_t[*]}"
