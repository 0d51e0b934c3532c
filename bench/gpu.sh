#!/usr/bin/env bash
# graft against PyTorch on one device, fp32 and bf16 (issue 17's GPU table): every row is a
# graft verb and the Python peer doing the same work on the same device in the same run.
#   train     graft train dann_mnist, one epoch of MNIST (batch 128)   vs bench/py/train_epoch.py
#             (torchvision + DataLoader); images/s of the epoch. In fp32 also: graft with
#             --data-on-device off (batches copied from the host), and both with random crops
#             and rotations (graft augments on the device, PyTorch in its DataLoader workers)
#   dann      graft adapt --method dann, one epoch (batch 64 + 64)     vs bench/py/dann_loop.py with
#             the data held on the device (--resident, the fastest Python loop) and with
#             DataLoaders; iterations/s
#   extract   graft extract ResNet-18 avgpool, 256 photos 224x224, a whole process
#             vs bench/py/photos_loop.py extract; seconds
#   finetune  graft finetune ResNet-18, 2 epochs on the same photos, a whole process
#             vs bench/py/photos_loop.py finetune; seconds
# Ratios are graft's speed over PyTorch's (above 1: graft is faster). After the table, a check
# that two processes (Gloo) run with this build.
# usage: bench/gpu.sh [--device cuda|cpu] [--build] [--tests] [--quick] [--out DIR]
#   --build   first configure and build graft into build-gpu against the Python torch's own
#             libtorch (Torch_DIR from torch.utils.cmake_prefix_path) with /usr/bin/g++ (see
#             docs/ARCHITECTURE.md "Current libtorch"); graft's other C++ dependencies come
#             from the bundle that scripts/deps_bundle.sh made on a Debian machine (.deps, or
#             the folder in GRAFT_DEPS_DIR; carried along), or else must be findable through
#             CMAKE_PREFIX_PATH. Without --build, BUILD_DIR (default build/) is used.
#   --tests   before the table, run the device-parameterised tests (Devices/*: training, checkpoints
#             moved between devices, data held on the device, every adaptation method, bf16 and
#             fp16) from tests/graft_device_tests, built first with --build (needs GTest, which
#             the bundle carries); their result is reported, never fatal to the table
#   --quick   small data (a rehearsal: MNIST 10 000 images, 64 photos, 200 DANN steps)
# Rehearsed on the CPU with: bench/gpu.sh --device cpu --quick
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
device=cuda; build_first=""; tests=""; quick=""; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --build) build_first=1; shift ;;
    --tests) tests=1; shift ;;
    --quick) quick=1; shift ;;
    --out) out="$2"; shift 2 ;;
    *) sed -n 2,24p "$0"; exit 2 ;;
  esac
done
py="${PYTHON:-python3}"
[ "$device" = cpu ] && py="${PYTHON:-/usr/bin/python3}"
if [ -n "$build_first" ]; then
  deps="${GRAFT_DEPS_DIR:-$here/.deps}"
  # shellcheck disable=SC1091
  [ -f "$deps/env.sh" ] && source "$deps/env.sh"  # the bundled libraries at build and run time
  torch_dir="$("$py" -c 'import torch, os; print(os.path.join(torch.utils.cmake_prefix_path, "Torch"))')"
  targets=(graft_cli); [ -n "$tests" ] && targets+=(graft_device_tests)
  CXX=/usr/bin/g++ cmake -S "$here" -B "$here/build-gpu" -DCMAKE_BUILD_TYPE=Release -DTorch_DIR="$torch_dir" \
    -DGRAFT_BUILD_TESTS="$([ -n "$tests" ] && echo ON || echo OFF)" -DGRAFT_BUILD_BENCH=OFF
  cmake --build "$here/build-gpu" -j "$(nproc)" --target "${targets[@]}"
  export BUILD_DIR="$here/build-gpu"
fi
build="${BUILD_DIR:-$here/build}"
g="$build/graft"
[ -x "$g" ] || { echo "gpu.sh: no $g; build graft first (or pass --build)" >&2; exit 1; }
cache="${GRAFT_DATA:-${HOME:-/root}/.cache/graft}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
out="${out:-$tmp}"; mkdir -p "$out"
limit=""; nphotos=256; dsteps=""
[ -n "$quick" ] && limit="@limit=10000" && nphotos=64 && dsteps=200
threads="$(nproc)"
export GRAFT_NO_BLAS_WARNING=1
[ -f "$cache/mnistm/train-images-idx4-ubyte" ] || "$g" data make mnistm >&2
"$py" "$here/bench/py/make_image_folder.py" "$cache/photos" "$tmp/photos" "$nphotos" 224
"$py" "$here/bench/py/export_resnet18.py" "$tmp/r18.pt" --seed 0 > /dev/null
jsonf() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
epoch0() { "$py" -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); print(e[sys.argv[2]])' "$1" "$2"; }
# secs CMD...: wall seconds of one whole process (date, since GPU images may lack /usr/bin/time)
secs() {
  local t0; t0="$(date +%s.%N)"
  "$@" > /dev/null 2> "$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  "$py" -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$(date +%s.%N)"
}
if [ -n "$tests" ]; then
  # Correctness on the device before speed: the Devices/* cases (the CPU case and this device's).
  {
    if [ ! -x "$build/tests/graft_device_tests" ]; then
      echo "device tests: no $build/tests/graft_device_tests (build it: cmake --build $build --target graft_device_tests)"
    elif GRAFT_NO_BLAS_WARNING=1 "$build/tests/graft_device_tests" --gtest_filter='Devices/*' > "$out/device_tests.log" 2>&1; then
      passed="$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\./\1/p' "$out/device_tests.log")"
      skipped="$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below:/\1/p' "$out/device_tests.log")"
      echo "device tests (Devices/*): ${passed:-0} passed, ${skipped:-0} skipped$([ -n "$skipped" ] && echo ' (see device_tests.log)')"
    else
      echo "device tests (Devices/*) FAILED: $(grep -E '^\[  FAILED  \] Devices' "$out/device_tests.log" | sed 's/^\[  FAILED  \] //; s/[ ,].*//' | sort -u | tr '\n' ' ')(log: device_tests.log)"
    fi
  } | tee "$out/device_tests.md"
fi
rows=()
r1() { "$py" -c 'import sys; print("%.1f" % float(sys.argv[1]))' "$1"; }
for prec in fp32 bf16; do
  common=(--device "$device" --threads "$threads" --precision "$prec" --quiet)
  # train: images/s of the epoch
  rm -rf "$tmp/train"
  "$g" train --model dann_mnist --data "mnist:train$limit" --epochs 1 --batch-size 128 --optimizer sgd --lr 0.01 \
    "${common[@]}" --out "$tmp/train" > /dev/null
  gt="$(epoch0 "$tmp/train/metrics.jsonl" images_per_s)"
  [ -n "$limit" ] && lim=(--limit 10000) || lim=()
  pj="$("$py" "$here/bench/py/train_epoch.py" "$cache/mnist" --workers 2 --threads "$threads" --batch 128 \
    --device "$device" --precision "$prec" "${lim[@]}")"
  pt="$("$py" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["images"] / j["epoch_seconds"])' "$pj")"
  rows+=("train|$prec|$(r1 "$gt") img/s|$(r1 "$pt") img/s|$("$py" -c "print('%.2f' % ($gt / $pt))")")
  if [ "$prec" = fp32 ]; then
    # the same epoch with batches copied from the host each step (what --data-on-device auto avoids)
    rm -rf "$tmp/train"
    "$g" train --model dann_mnist --data "mnist:train$limit" --epochs 1 --batch-size 128 --optimizer sgd --lr 0.01 \
      --data-on-device off "${common[@]}" --out "$tmp/train" > /dev/null
    go="$(epoch0 "$tmp/train/metrics.jsonl" images_per_s)"
    rows+=("train, graft --data-on-device off|$prec|$(r1 "$go") img/s|$(r1 "$pt") img/s|$("$py" -c "print('%.2f' % ($go / $pt))")")
    # augmented: random crop (padding 2) and rotation (10 degrees); graft on the device, PyTorch in its workers
    rm -rf "$tmp/train"
    "$g" train --model dann_mnist --data "mnist:train$limit" --epochs 1 --batch-size 128 --optimizer sgd --lr 0.01 \
      --augment random-crop=28:2,rotate=10 "${common[@]}" --out "$tmp/train" > /dev/null
    ga="$(epoch0 "$tmp/train/metrics.jsonl" images_per_s)"
    paj="$("$py" "$here/bench/py/train_epoch.py" "$cache/mnist" --augment --workers 2 --threads "$threads" --batch 128 \
      --device "$device" --precision "$prec" "${lim[@]}")"
    pa="$("$py" -c 'import json,sys; j=json.loads(sys.argv[1]); print(j["images"] / j["epoch_seconds"])' "$paj")"
    rows+=("train, augmented|$prec|$(r1 "$ga") img/s|$(r1 "$pa") img/s|$("$py" -c "print('%.2f' % ($ga / $pa))")")
  fi
  # dann: iterations/s
  rm -rf "$tmp/dann"
  "$g" adapt --method dann --model dann_mnist --channels 3 --source "mnist:train$limit" --target mnistm:train \
    --epochs 1 --batch-size 64 --optimizer sgd --lr 0.01 --seeds 1 "${common[@]}" --out "$tmp/dann" > /dev/null 2>&1
  gd="$("$py" -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); print(e["step"] / e["seconds"])' \
        "$tmp/dann/seed-1/metrics.jsonl")"
  steps="${dsteps:-843}"
  pr="$(jsonf "$("$py" "$here/bench/py/dann_loop.py" --steps "$steps" --threads "$threads" --device "$device" \
        --precision "$prec" --resident)" iters_per_s)"
  pl="$(jsonf "$("$py" "$here/bench/py/dann_loop.py" --steps "$steps" --threads "$threads" --device "$device" \
        --precision "$prec" --workers 2)" iters_per_s)"
  rows+=("dann (vs data on the device)|$prec|$(r1 "$gd") it/s|$(r1 "$pr") it/s|$("$py" -c "print('%.2f' % ($gd / $pr))")")
  rows+=("dann (vs DataLoaders)|$prec|$(r1 "$gd") it/s|$(r1 "$pl") it/s|$("$py" -c "print('%.2f' % ($gd / $pl))")")
  # extract and finetune: whole processes
  ge="$(secs "$g" extract --model "$tmp/r18.pt" --data "folder:$tmp/photos" --layers avgpool "${common[@]}" \
        --out "$tmp/f.npy")"
  pe="$(secs "$py" "$here/bench/py/photos_loop.py" extract --model "$tmp/r18.pt" --root "$tmp/photos" \
        --threads "$threads" --workers 2 --device "$device" --precision "$prec" --out "$tmp/p.npy")"
  rows+=("extract ResNet-18, $nphotos photos|$prec|$ge s|$pe s|$("$py" -c "print('%.2f' % ($pe / $ge))")")
  rm -rf "$tmp/ft"
  gf="$(secs "$g" finetune --model "$tmp/r18.pt" --data "folder:$tmp/photos" --epochs 2 "${common[@]}" \
        --out "$tmp/ft")"
  pf="$(secs "$py" "$here/bench/py/photos_loop.py" finetune --model "$tmp/r18.pt" --root "$tmp/photos" --epochs 2 \
        --threads "$threads" --workers 2 --device "$device" --precision "$prec" --out "$tmp/p.pt")"
  rows+=("finetune ResNet-18, 2 epochs|$prec|$gf s|$pf s|$("$py" -c "print('%.2f' % ($pf / $gf))")")
done
if [ "$device" = cpu ]; then name="$(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $threads threads"
else name="$("$py" -c 'import torch; print(torch.cuda.get_device_name(0))')"; fi
{
  echo "graft vs PyTorch on $name ($device), $(date -u +%F)$([ -n "$quick" ] && echo ', --quick rehearsal')"
  echo
  echo "| row | precision | graft | PyTorch | graft speed-up |"
  echo "|---|---|---|---|---|"
  for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
} | tee "$out/gpu_table.md"
# Several processes with this libtorch (Gloo, two ranks on the CPU: the one backend that one GPU
# can check, NCCL needing a GPU per rank): whether they meet, sum correctly and train, never a
# figure of the table. A build without Gloo (GRAFT_GLOO=AUTO found no fitting headers) or a
# failure is reported here, not fatal to the run.
{
  echo
  if "$g" launch --nproc 2 -- dist-check --device cpu --steps 3 --mb 1 --model dann_mnist --threads 1 \
       > "$tmp/dist.log" 2>&1; then
    echo "multi-process check (graft launch --nproc 2 -- dist-check, Gloo): $(tail -n 1 "$tmp/dist.log")"
  else
    echo "multi-process check (graft launch --nproc 2 -- dist-check, Gloo) FAILED: $(grep -m 1 'error' "$tmp/dist.log" || tail -n 1 "$tmp/dist.log")"
  fi
} | tee -a "$out/gpu_table.md"
