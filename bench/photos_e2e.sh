#!/usr/bin/env bash
# Whole processes on photos with default options (issue 17's "fast defaults"): graft
# `extract` and `finetune` against the idiomatic Python loops of bench/py/photos_loop.py,
# timed from process start to exit (/usr/bin/time: wall seconds and peak resident memory).
#   data   256 JPEG crops of 224x224 from the cached photos, 10 class folders
#   model  a seeded random ResNet-18 in TorchScript (bench/py/export_resnet18.py)
#   graft  extract --layers avgpool, and finetune --epochs 2; every other option at its
#          default (batch size and loader threads then follow the input size and the cores)
#   python batch 32, with 2 DataLoader worker processes and with none (workers 0); the
#          faster of the two is the peer of the ratio. Peak memory of the Python runs with
#          workers is the largest single process (GNU time reports the maximum, not the sum).
# Both use THREADS intra-op threads (default 2). Ratios: python seconds / graft seconds
# (above 1: graft is faster); memory: graft peak / python peak.
# usage: bench/photos_e2e.sh [REPEATS] [THREADS]   (default 2 2)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-2}"; threads="${2:-2}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$py" "$here/bench/py/make_image_folder.py" "$cache/photos" "$tmp/photos" 256 224
"$py" "$here/bench/py/export_resnet18.py" "$tmp/resnet18.pt" --seed 0 >/dev/null
# timed NAME CMD...: appends "seconds peak_kb" of one whole process to $tmp/NAME
timed() {
  local name="$1"; shift
  /usr/bin/time -f "%e %M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  cat "$tmp/t" >> "$tmp/$name"
}
export GRAFT_NO_BLAS_WARNING=1
for i in $(seq "$n"); do
  rm -rf "$tmp/ft" "$tmp/f.npy"*
  timed g_extract "$build/graft" extract --model "$tmp/resnet18.pt" --data "folder:$tmp/photos" --layers avgpool \
    --threads "$threads" --quiet --out "$tmp/f.npy"
  for w in 2 0; do
    timed "p${w}_extract" "$py" "$here/bench/py/photos_loop.py" extract --model "$tmp/resnet18.pt" --root "$tmp/photos" \
      --workers "$w" --threads "$threads" --out "$tmp/p.npy"
  done
  timed g_finetune "$build/graft" finetune --model "$tmp/resnet18.pt" --data "folder:$tmp/photos" --epochs 2 \
    --threads "$threads" --quiet --out "$tmp/ft"
  for w in 2 0; do
    timed "p${w}_finetune" "$py" "$here/bench/py/photos_loop.py" finetune --model "$tmp/resnet18.pt" \
      --root "$tmp/photos" --workers "$w" --threads "$threads" --epochs 2 --out "$tmp/p.pt"
  done
done
"$py" - "$tmp" "$n" "$threads" <<'PY'
import sys
tmp, n, threads = sys.argv[1], sys.argv[2], sys.argv[3]
def runs(name):
    return [tuple(float(v) for v in line.split()) for line in open(f"{tmp}/{name}")]
print(f"256 photos 224x224, ResNet-18, {threads} threads, whole processes, best of {n} (seconds; peak memory GiB)")
for verb in ("extract", "finetune"):
    g = runs(f"g_{verb}"); p2 = runs(f"p2_{verb}"); p0 = runs(f"p0_{verb}")
    gs, gm = min(s for s, _ in g), max(m for _, m in g) / 2**20
    best = min((min(s for s, _ in p), max(m for _, m in p) / 2**20, w) for w, p in (("2", p2), ("0", p0)))
    print(f"{verb}: graft {gs:.2f} s {gm:.2f} GiB | python workers 2: {min(s for s, _ in p2):.2f} s "
          f"{max(m for _, m in p2) / 2**20:.2f} GiB | python workers 0: {min(s for s, _ in p0):.2f} s "
          f"{max(m for _, m in p0) / 2**20:.2f} GiB")
    print(f"  speed-up vs the faster python (workers {best[2]}): {best[0] / gs:.2f}x; "
          f"graft peak memory / that python's: {gm / best[1]:.2f}")
    print(f"  all graft: {g}")
    print(f"  all python workers 2: {p2}; workers 0: {p0}")
PY
