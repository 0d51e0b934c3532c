#!/usr/bin/env bash
# Fetch real ImageNet-derived networks and convert them to TorchScript chains for graft.
# Source: the npm package nsfwjs (MIT), which ships TensorFlow.js Layers models
# (MobileNetV2 224x224 and InceptionV3 299x299, ImageNet-pretrained then fine-tuned
# for 5 classes; weights quantised to uint8). Writes into the data cache
# (default ~/.cache/graft, override with GRAFT_DATA):
#   models/tfjs/<name>/        the unpacked tfjs model (model.json + shards)
#   models/<name>.pt           the TorchScript chain (scripts/convert_tfjs.py)
#   node/node_modules/         @tensorflow/tfjs, to check parity with the original in node
#   models/<name>.parity.json  that check on the cached photos (max abs diff of probabilities)
# Nothing here is needed by the test suite, which makes its own small tfjs model.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
cache="${GRAFT_DATA:-${HOME:-/root}/.cache/graft}"
py=/usr/bin/python3
mkdir -p "$cache/models/tfjs" "$cache/node"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
classes="drawing,hentai,neutral,porn,sexy"  # nsfwjs's class order (dist/cjs/nsfw_classes.js)

if [ ! -s "$cache/models/mobilenet_v2.pt" ] || [ ! -s "$cache/models/inception_v3.pt" ]; then
  echo "models: nsfwjs@4.3.0 from npm"
  (cd "$tmp" && npm pack --silent nsfwjs@4.3.0 >/dev/null)
  tar -xzf "$tmp"/nsfwjs-*.tgz -C "$tmp"
  for m in mobilenet_v2:224 inception_v3:299; do
    name="${m%%:*}"; size="${m##*:}"
    node "$here/scripts/convert_tfjs_unpack.js" "$tmp/package/dist/models/$name" "$cache/models/tfjs/$name"
    # nsfwjs feeds pixels / 255 resized (bilinear) to a square of the input size
    "$py" "$here/scripts/convert_tfjs.py" "$cache/models/tfjs/$name" "$cache/models/$name.pt" \
      --classes "$classes" --preprocess "resize=${size}x${size}" --source "npm nsfwjs@4.3.0 dist/models/$name"
  done
else
  echo "models: present in $cache/models"
fi

if [ ! -d "$cache/node/node_modules/@tensorflow/tfjs" ]; then
  echo "models: @tensorflow/tfjs (pure JavaScript) -> $cache/node, for the parity check"
  (cd "$cache/node" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --silent @tensorflow/tfjs@4.22.0 >/dev/null)
fi
if [ -n "$(ls -A "$cache/photos" 2>/dev/null)" ]; then
  for name in mobilenet_v2 inception_v3; do
    # Once per converted file: pure-JavaScript tfjs takes minutes for InceptionV3.
    parity="$cache/models/$name.parity.json"
    if [ -s "$parity" ] && [ "$parity" -nt "$cache/models/$name.pt" ] &&
       "$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j["max_abs_diff"] <= j["tol"] else 1)' "$parity"; then
      echo "models: $name parity already checked ($parity)"
      continue
    fi
    NODE_PATH="$cache/node/node_modules" "$py" "$here/scripts/check_tfjs_parity.py" "$cache/models/tfjs/$name" \
      "$cache/models/$name.pt" "$cache/photos" --json "$parity"
  done
else
  echo "models: no photos in $cache/photos (run scripts/fetch_data.sh) - parity check skipped"
fi
