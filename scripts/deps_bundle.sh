#!/usr/bin/env bash
# Prepares graft's C++ dependencies (everything but libtorch) for a machine that has no Debian
# packages, such as a GPU image with only Python, CUDA and a compiler: run it on Debian 12 (it
# needs apt-get; nothing is installed here), copy or carry the folder to the other machine,
# then build there against any libtorch:
#     bash scripts/deps_bundle.sh [DIR]          # default .deps (git-ignored), about 40 MB
#     source DIR/env.sh                          # on the other machine, from the repo root
#     CXX=/usr/bin/g++ cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release \
#         -DTorch_DIR="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')/Torch"
#     cmake --build build-gpu --target graft_cli
# (bench/gpu.sh --build does those three steps.) What the folder holds:
#   root/    Debian 12 packages unpacked with dpkg -x: the headers and CMake files of
#            nlohmann-json, CLI11, zlib, FreeType, LIBLINEAR, glog and Gloo, OpenCV's core,
#            imgproc and imgcodecs, GoogleTest (for the device tests, bench/gpu.sh --tests),
#            and every shared library these need at run time
#            (their closure, found from the libraries' DT_NEEDED entries), except glibc,
#            libstdc++ and libgcc, which the compiler's system provides.
#   stubs/   libraries OpenCV links but graft never calls (GDAL, GDCM, OpenEXR, GLX: the
#            closure would be about 240 packages with them). Each stub defines exactly the
#            symbols the bundled libraries import from it, since OpenCV is linked with
#            immediate binding; each function does nothing and returns 0 (OpenCV calls some
#            as it loads and at its first imread; graft never hands it those formats).
#   env.sh   CMAKE_PREFIX_PATH, LD_LIBRARY_PATH (build and run time) and GRAFT_DEPS.
#   PACKAGES the package names and versions, for the record.
#     bash scripts/deps_bundle.sh --check [DIR]
#            here: hides this machine's copies of those headers and libraries (a mount
#            namespace, root), configures graft and builds and runs a probe program against DIR
#            alone. graft itself cannot be linked that way here: Debian's libtorch needs the
#            system's OpenCV highgui, whose Qt and libGL want the real GLX the bundle stubs (a
#            pip libtorch needs no OpenCV).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
check=""
[ "${1:-}" = --check ] && { check=1; shift; }
dir="$(realpath -m "${1:-$here/.deps}")"
arch=x86_64-linux-gnu

# Development packages graft's CMakeLists.txt finds, and the run-time libraries they name.
dev=(nlohmann-json3-dev libcli11-dev zlib1g-dev libfreetype-dev liblinear-dev libgoogle-glog-dev libgflags-dev
     libgloo-dev libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libgtest-dev)
# Linked by OpenCV, never called by graft: stubbed (soname, the library here that defines them).
stubs=(libgdal.so.32 libgdcmMSFF.so.3.0 libgdcmDSED.so.3.0 libOpenEXR-3_1.so.30 libGLX.so.0)
# Provided by every system with a C++ compiler.
base='^(libc|libm|libdl|libpthread|librt|libutil|libresolv|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so'

die() { echo "deps_bundle.sh: $*" >&2; exit 1; }

if [ -n "$check" ]; then
  [ -f "$dir/env.sh" ] || die "no bundle in $dir; run scripts/deps_bundle.sh $dir first"
  [ "$(id -u)" = 0 ] || die "--check needs root (a private mount namespace hides the system copies)"
  work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
  cat > "$work/probe.cpp" <<'EOF'
// Everything graft takes from the bundle, in one program: PNG, JPEG, WebP, TIFF and BMP
// through OpenCV, FreeType, zlib, JSON, CLI11, glog, and the LIBLINEAR and Gloo headers.
#include <CLI/CLI.hpp>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <glog/logging.h>
#include <gloo/config.h>
#include <linear.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zlib.h>
#include <cstdio>
int main(int argc, char** argv) {
  CLI::App app{"probe"};
  std::string png;
  app.add_option("png", png)->required();
  CLI11_PARSE(app, argc, argv);
  google::InitGoogleLogging(argv[0]);
  cv::Mat m = cv::imread(png, cv::IMREAD_COLOR);
  if (m.empty()) return 2;
  cv::Mat small;
  cv::resize(m, small, cv::Size(8, 8));
  for (const char* ext : {".jpg", ".webp", ".tiff", ".bmp"}) {  // every other codec graft reads
    std::vector<uchar> buf;
    if (!cv::imencode(ext, m, buf) || cv::imdecode(buf, cv::IMREAD_COLOR).size() != m.size()) return 4;
  }
  FT_Library ft;
  if (FT_Init_FreeType(&ft) != 0) return 3;
  FT_Done_FreeType(ft);
  auto j = nlohmann::json::parse(R"({"zlib":")" + std::string(zlibVersion()) + "\"}");
  std::printf("decoded and re-encoded %dx%d (png jpg webp tiff bmp), zlib %s, liblinear %d, gloo %d.%d\n", m.cols, m.rows,
              j["zlib"].get<std::string>().c_str(), LIBLINEAR_VERSION, GLOO_VERSION_MAJOR, GLOO_VERSION_MINOR);
  return 0;
}
EOF
  /usr/bin/python3 - "$work/p.png" <<'PNG'
import struct, sys, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\0" + bytes(v for x in range(16) for v in (x * 16, y * 16, 128)) for y in range(16))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
                              + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PNG
  # Inside a private mount namespace: the system's copies of the bundled headers and
  # libraries are hidden, so the compiler, CMake and the loader can only find the bundle's.
  unshare -m bash -euo pipefail -c '
    empty="$(mktemp -d)"
    for d in /usr/include/opencv4 /usr/include/nlohmann /usr/include/CLI /usr/include/freetype2 /usr/include/glog \
             /usr/include/gflags /usr/include/gloo /usr/include/gtest /usr/lib/'$arch'/cmake/nlohmann_json \
             /usr/share/cmake/nlohmann_json /usr/lib/cmake/CLI11 /usr/share/cmake/CLI11 /usr/lib/'$arch'/cmake/glog \
             /usr/lib/'$arch'/cmake/GTest; do
      [ -d "$d" ] && mount --bind "$empty" "$d"
    done
    for f in /usr/include/linear.h /usr/include/zlib.h /usr/include/ft2build.h \
             /usr/lib/'$arch'/lib{opencv_core,opencv_imgproc,opencv_imgcodecs,linear,glog,freetype}.so* \
             /usr/lib/'$arch'/libgtest*.a; do
      [ -e "$f" ] && mount --bind /dev/null "$f"
    done
    source "'"$dir"'/env.sh"
    echo "== configure graft against the bundle (system copies hidden)"
    cmake -S "'"$here"'" -B "'"$work"'/b" -DGRAFT_BUILD_TESTS=ON -DGRAFT_BUILD_BENCH=OFF > "'"$work"'/cmake.log" 2>&1 ||
      { cat "'"$work"'/cmake.log"; exit 1; }
    grep -E "GRAFT_OPENCV_core_LIB|GRAFT_LIBLINEAR_LIB|GLOG_LIB|GLOO_INCLUDE_DIR|nlohmann_json_DIR|GTest_DIR|FREETYPE_LIBRARY_RELEASE:" \
      "'"$work"'/b/CMakeCache.txt"
    ! grep -E "^(GRAFT_OPENCV_core_LIB|GRAFT_LIBLINEAR_LIB|GLOG_LIB|GLOO_INCLUDE_DIR|nlohmann_json_DIR|GTest_DIR|FREETYPE_LIBRARY_RELEASE)[^=]*=/usr" \
      "'"$work"'/b/CMakeCache.txt" || { echo "a dependency was found outside the bundle"; exit 1; }
    echo "== build and run a probe program against the bundle alone"
    inc="$GRAFT_DEPS/root/usr/include"; lib="$GRAFT_DEPS/root/usr/lib/'$arch'"
    g++ -std=c++17 "'"$work"'/probe.cpp" -o "'"$work"'/probe" -I"$inc" -I"$inc/opencv4" -I"$inc/freetype2" -L"$lib" \
      -Wl,-rpath-link,"$lib":"$GRAFT_DEPS/stubs" -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -llinear -lfreetype \
      -lglog -lz
    "'"$work"'/probe" "'"$work"'/p.png"
    echo "== libraries the probe loaded from outside the bundle (glibc and the C++ runtime expected):"
    ldd "'"$work"'/probe" | grep -v -e "$GRAFT_DEPS" -e linux-vdso | sed "s/^/   /"
  '
  exit 0
fi

command -v apt-get >/dev/null && command -v dpkg >/dev/null || die "needs Debian 12's apt-get and dpkg"
rm -rf "$dir"; mkdir -p "$dir/debs" "$dir/root" "$dir/stubs"
cd "$dir/debs"

unpack() {  # packages...: download (no install) and unpack
  apt-get download "$@" > /dev/null || die "apt-get download $* failed (is the Debian archive reachable?)"
  for p in "$@"; do dpkg -x "$(ls "${p}"_*.deb | head -1)" "$dir/root"; done
}

# The development packages and the run-time packages they depend on directly.
unpack "${dev[@]}"
mapfile -t rt < <(for p in "${dev[@]}"; do
  apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances "$p" |
    sed -n 's/^ *Depends: //p'; done | grep -v '^<' | grep -v -e '-dev$' -e '^libc6' -e '^libstdc++' -e '^libgcc' \
    -e '^libgloo' | sort -u)  # Gloo: its headers only (libtorch holds its own Gloo)
unpack "${rt[@]}"

# Libraries that Debian installs through update-alternatives (BLAS, LAPACK) sit in a
# subfolder until a maintainer script links them; link each soname into the library folder.
alternatives() {
  find "$dir/root/usr/lib/$arch" -mindepth 2 -name 'lib*.so.[0-9]*' -type f | while read -r f; do
    so="$(readelf -d "$f" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
    if [ -n "$so" ] && [ ! -e "$dir/root/usr/lib/$arch/$so" ]; then
      ln -s "${f#"$dir/root/usr/lib/$arch/"}" "$dir/root/usr/lib/$arch/$so"
    fi
  done
}
# The reference BLAS and LAPACK that OpenCV's core links (graft's BLAS is libtorch's), not
# whatever this machine's alternatives point to.
unpack libblas3 liblapack3
alternatives

# Close over DT_NEEDED: each soname a bundled library needs that is neither in the bundle, nor
# a base library, nor stubbed, comes from the package that holds it on this machine.
for round in 1 2 3 4 5 6; do
  missing=()
  while read -r so; do
    [ -e "$dir/root/usr/lib/$arch/$so" ] || [ -e "$dir/root/lib/$arch/$so" ] && continue
    echo "$so" | grep -qE "$base" && continue
    printf '%s\n' "${stubs[@]}" | grep -qxF "$so" && continue
    missing+=("$so")
  done < <(find "$dir/root" -name '*.so*' -type f -exec readelf -d {} + 2>/dev/null |
           sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)
  [ ${#missing[@]} -eq 0 ] && break
  pkgs=()
  for so in "${missing[@]}"; do
    path="$(ldconfig -p | awk -v s="$so" '$1 == s && /x86-64/ && !p {p = $NF} END {print p}')"
    [ -n "$path" ] || die "no package here provides $so (install it first, or add it to the stubs)"
    pkg="$(dpkg -S "$arch/$so" 2>/dev/null | sed -n '/:amd64: /{s/:amd64: .*//p;q}')"
    [ -n "$pkg" ] || die "no installed package holds $path"
    pkgs+=("$pkg")
  done
  mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
  echo "round $round: ${pkgs[*]}"
  unpack "${pkgs[@]}"
  alternatives
done

# Stubs: the symbols the bundle imports from each stubbed library, defined with their kind
# and size, under the library's soname.
for so in "${stubs[@]}"; do
  real="$(ldconfig -p | awk -v s="$so" '$1 == s && /x86-64/ && !p {p = $NF} END {print p}')"
  [ -n "$real" ] || die "$so is not installed here: its symbols cannot be read (apt-get install the package that holds it)"
  users=$(grep -rlF --include='*.so*' "$so" "$dir/root" || true)
  syms=$(for u in $users; do nm -D --undefined-only "$u" | awk '{print $2}'; done | sed 's/@.*//' | sort -u)
  src="$dir/stubs/${so%%.so*}.c"
  {
    echo "// Stub of $so, from scripts/deps_bundle.sh: every symbol the bundle imports from it,"
    echo "// each function doing nothing and returning 0. OpenCV calls some as it loads and at its"
    echo "// first imread (OpenEXR constructors, GDALAllRegister); graft reaches none of the decoders"
    echo "// behind them (it sizes every image from its header first: PNG, JPEG, BMP, PNM, WebP, TIFF)."
    nm -D --defined-only -S "$real" | while read -r _addr size kind name; do
      [ -z "${name:-}" ] && { name="$kind"; kind="$size"; size=0; }
      name="${name%%@*}"
      grep -qxF "$name" <<< "$syms" || continue
      case "$kind" in
        T|W|i) echo "long $name(void) { return 0; }" ;;
        *) echo "char $name[$(( 16#${size:-0} > 0 ? 16#${size:-0} : 1 ))];" ;;
      esac
    done
  } > "$src"
  gcc -shared -fPIC -w -o "$dir/stubs/$so" -Wl,-soname,"$so" "$src"
done

{
  echo "# graft's C++ dependencies from scripts/deps_bundle.sh: source it before configuring"
  echo "# and before running graft (the bundled libraries and stubs go on the loader's path)."
  echo "export GRAFT_DEPS=\"\$(cd \"\$(dirname \"\${BASH_SOURCE[0]}\")\" && pwd)\""
  echo "export CMAKE_PREFIX_PATH=\"\$GRAFT_DEPS/root/usr\${CMAKE_PREFIX_PATH:+:\$CMAKE_PREFIX_PATH}\""
  echo "export LD_LIBRARY_PATH=\"\$GRAFT_DEPS/root/usr/lib/$arch:\$GRAFT_DEPS/root/lib/$arch:\$GRAFT_DEPS/stubs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
} > "$dir/env.sh"
ls "$dir/debs" | sed 's/_amd64.deb$//' > "$dir/PACKAGES"
# graft links OpenCV shared: its static archives (a third of the size) and documentation stay behind.
rm -rf "$dir/debs" "$dir/root/usr/share/doc" "$dir/root/usr/share/man" "$dir/root/usr/share/lintian"
find "$dir/root" -name 'libopencv_*.a' -delete  # other archives are named by CMake files
echo "bundle in $dir: $(wc -l < "$dir/PACKAGES") packages, ${#stubs[@]} stubs, $(du -sm "$dir" | cut -f1) MB"
