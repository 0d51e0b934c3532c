#!/usr/bin/env bash
# Image-folder loading (JPEG decode + Resize(128) + CenterCrop(112) + flip + normalise,
# batches of 64, 2 workers): graft's loader vs torchvision ImageFolder + DataLoader,
# measured in one run, alternating, best of N. ratio = graft images/s / torchvision images/s
# usage: bench/image_folder.sh [REPEATS] [IMAGES]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
n="${1:-3}"; count="${2:-2000}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
"$py" "$here/bench/py/make_image_folder.py" "$cache/photos" "$tmp/folder" "$count" 160
g=(); p=()
for i in $(seq "$n"); do
  g+=("$(field "$("$build/bench/bench_image_folder" --root "$tmp/folder" --workers 2 --batch 64 --epochs 2)" images_per_s)")
  p+=("$(field "$("$py" "$here/bench/py/image_folder.py" --root "$tmp/folder" --workers 2 --batch 64 --epochs 2)" images_per_s)")
done
best_g=$("$py" -c 'import sys; print(max(float(v) for v in sys.argv[1:]))' "${g[@]}")
best_p=$("$py" -c 'import sys; print(max(float(v) for v in sys.argv[1:]))' "${p[@]}")
echo "image folder ($count JPEGs 160x160, 2 workers; images/s, best of $n): graft $best_g  torchvision $best_p -> ratio $(ratio "$best_g" "$best_p")x"
echo "  all graft: ${g[*]}"; echo "  all torchvision: ${p[*]}"
