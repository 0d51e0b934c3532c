#!/usr/bin/env bash
# Extraction in bf16 (autocast, channels-last) against fp32 (the inference-optimised copy):
# (1) speed and features: whole `graft extract` processes on 256 photos of 224x224 (crops of
#     the cached photos), defaults otherwise, THREADS threads, alternating, REPEATS runs each;
#     the features of the two precisions compared per photo (cosine, max abs difference).
#     Needs an idle machine for the seconds.
# (2) linear probe: `graft transfer` with only --precision different, Fashion-MNIST classes 5-9,
#     100 labels per class, seeds 1-5, images resized to 64x64, average-pooled stages, C by
#     cross-validation; the mean test accuracy of each layer in each precision.
# Models: the real MobileNetV2 (scripts/fetch_models.sh; stages block_10 and pool) and a seeded
# random ResNet-18 (bench/py/export_resnet18.py; layer3 and avgpool).
# Usage: scripts/results/precision_extract.sh [OUT]   (default runs/precision-extract)
# Environment: REPEATS (2), THREADS (2), PROBE_THREADS (1), GRAFT (build/graft), SKIP_PROBE=1,
# SKIP_TIMING=1 (keep the times and features of an earlier run, e.g. to run the probe while the
# machine is busy).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
g="${GRAFT:-$here/build/graft}"
py=/usr/bin/python3
cache="${GRAFT_DATA:-${HOME:-/root}/.cache/graft}"
out="${1:-$here/runs/precision-extract}"
repeats="${REPEATS:-2}"; threads="${THREADS:-2}"; pthreads="${PROBE_THREADS:-1}"
mkdir -p "$out"
[ -d "$out/photos" ] || "$py" "$here/bench/py/make_image_folder.py" "$cache/photos" "$out/photos" 256 224
[ -s "$out/resnet18.pt" ] || "$py" "$here/bench/py/export_resnet18.py" "$out/resnet18.pt" --seed 0 >/dev/null
mnv2="$cache/models/mobilenet_v2.pt"
[ -s "$mnv2" ] || { echo "no $mnv2: run scripts/fetch_models.sh" >&2; exit 1; }
export GRAFT_NO_BLAS_WARNING=1
[ -n "${SKIP_TIMING:-}" ] || : > "$out/times.txt"
for i in $(seq "$([ -n "${SKIP_TIMING:-}" ] && echo 0 || echo "$repeats")"); do
  for m in resnet18 mobilenet_v2; do
    model="$out/resnet18.pt"; layer=avgpool
    [ "$m" = mobilenet_v2 ] && model="$mnv2" && layer=pool
    for p in fp32 bf16; do
      /usr/bin/time -f "$m $p %e %M" -a -o "$out/times.txt" "$g" extract --model "$model" --data "folder:$out/photos" \
        --layers "$layer" --threads "$threads" --precision "$p" --quiet --out "$out/$m-$p.npy" > /dev/null
    done
  done
done
if [ -z "${SKIP_PROBE:-}" ]; then
  for m in resnet18 mobilenet_v2; do
    model="$out/resnet18.pt"; layers=layer3,avgpool
    [ "$m" = mobilenet_v2 ] && model="$mnv2" && layers=block_10,pool
    for p in fp32 bf16; do
      [ -f "$out/probe-$m-$p/results.json" ] && continue
      "$g" transfer --model "$model" --channels 3 --preprocess resize=64x64 --layers "$layers" \
        --train fashion-mnist:train@classes=5-9 --test fashion-mnist:test@classes=5-9 --labels-per-class 100 \
        --seeds 1,2,3,4,5 --threads "$pthreads" --precision "$p" --quiet --out "$out/probe-$m-$p" > /dev/null
    done
  done
fi
"$py" - "$out" <<'PY'
import json, pathlib, statistics, sys
import numpy as np
out = pathlib.Path(sys.argv[1])
runs = {}
for line in (out / "times.txt").read_text().split("\n"):
    f = line.split()
    if len(f) == 4 and f[2].replace(".", "").isdigit():
        runs.setdefault((f[0], f[1]), []).append((float(f[2]), float(f[3]) / 2**20))
print("| model | fp32 s (best) | bf16 s (best) | bf16 speed-up | peak GiB fp32 / bf16 | cosine min / mean | max abs diff |")
print("|---|---|---|---|---|---|---|")
for m in ("resnet18", "mobilenet_v2"):
    f, b = runs[(m, "fp32")], runs[(m, "bf16")]
    a, c = np.load(out / f"{m}-fp32.npy"), np.load(out / f"{m}-bf16.npy")
    cos = (a * c).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(c, axis=1) + 1e-12)
    fs, bs = min(s for s, _ in f), min(s for s, _ in b)
    print(f"| {m} | {fs:.2f} | {bs:.2f} | {fs / bs:.2f}x | {max(g for _, g in f):.2f} / {max(g for _, g in b):.2f} "
          f"| {cos.min():.5f} / {cos.mean():.5f} | {np.abs(a - c).max():.4f} |")
probe = sorted(out.glob("probe-*-fp32/results.json"))
if probe:
    print()
    print("| model | layer | fp32 test % (mean ± std, 5 seeds) | bf16 test % | bf16 - fp32 |")
    print("|---|---|---|---|---|")
def accs(path):
    j = json.loads(path.read_text())
    by = {}
    for r in j["runs"]:
        by.setdefault(r["layer"], []).append(100 * r["accuracy"])
    return by
for fp in probe:
    m = fp.parent.name[len("probe-"):-len("-fp32")]
    bf = out / f"probe-{m}-bf16" / "results.json"
    if not bf.exists():
        continue
    A, B = accs(fp), accs(bf)
    for layer in A:
        a, b = A[layer], B.get(layer, [])
        if not b:
            continue
        print(f"| {m} | {layer} | {statistics.mean(a):.2f} ± {statistics.stdev(a):.2f} | "
              f"{statistics.mean(b):.2f} ± {statistics.stdev(b):.2f} | {statistics.mean(b) - statistics.mean(a):+.2f} |")
PY
