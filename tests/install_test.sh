#!/usr/bin/env bash
# Installs graft into a temporary prefix, then builds the examples/ against the
# installed package with find_package(graft) and runs them on tiny generated data;
# also checks the pkg-config file, the man page and the bash completion.
#   install_test.sh BUILD_DIR SOURCE_DIR FIXTURES_DIR
set -euo pipefail
build="$1" src="$2" fixtures="$3"
work="$(mktemp -d "${TMPDIR:-/tmp}/graft-install-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"
fail() { echo "install test: FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/graft lib/libgraft.a include/graft/version.h include/graft/models/open.h include/graft/train/finetune.h \
         lib/cmake/graft/graftConfig.cmake lib/cmake/graft/graftConfigVersion.cmake lib/cmake/graft/graftTargets.cmake \
         lib/pkgconfig/graft.pc share/man/man1/graft.1 share/bash-completion/completions/graft; do
  [ -s "$prefix/$f" ] || fail "$f was not installed"
done
version="$(sed -n 's/^project(graft VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")"
[ "$("$prefix/bin/graft" --version)" = "graft $version" ] || fail "graft --version is not 'graft $version'"
grep -q "GRAFT_VERSION \"$version\"" "$prefix/include/graft/version.h" || fail "version.h does not say $version"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --modversion graft | grep -qx "$version" || fail "pkg-config version"
PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --libs graft | grep -q -- "-lgraft" || fail "pkg-config libs"

# The examples, built as a consumer would (ccache when present keeps reruns fast).
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$src/examples" -B "$work/examples" "${gen[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "configure"; }
cmake --build "$work/examples" -j 2 >"$work/build.log" 2>&1 || { tail -50 "$work/build.log"; fail "build"; }

# Tiny data: 28x28 gray images of 4 classes (a bright band whose row tells the class),
# and a target domain with the intensities inverted.
/usr/bin/python3 - "$work/data" <<'PY'
import os, struct, sys
import numpy as np
out = sys.argv[1]; os.makedirs(out)
rng = np.random.default_rng(0)
def write(name, x, y):
    with open(os.path.join(out, name + "-images"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(x), 28, 28)); f.write(x.astype(np.uint8).tobytes())
    with open(os.path.join(out, name + "-labels"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(y))); f.write(y.astype(np.uint8).tobytes())
for split, n in (("train", 96), ("test", 48)):
    y = np.arange(n) % 4
    x = rng.integers(0, 60, size=(n, 28, 28))
    for i, c in enumerate(y):
        x[i, 4 + 6 * c: 8 + 6 * c, :] = 230
    write("src-" + split, x, y)
    write("tgt-" + split, 255 - x, y)
PY
d="$work/data"
spec() { echo "idx:$d/$1-images,$d/$1-labels"; }
export OMP_NUM_THREADS=1

"$prefix/bin/graft" train --model dann_mnist --data "$(spec src-train)" --epochs 2 --lr 0.05 --batch-size 16 \
  --out "$work/source" --threads 1 --workers 1 --quiet >/dev/null
out="$("$work/examples/offtheshelf_svm" "$work/source/model.ckpt" fc1 "$(spec src-train)" "$(spec src-test)" 8)"
echo "$out"
echo "$out" | grep -q "test accuracy" || fail "offtheshelf_svm"
out="$("$work/examples/finetune_torchscript" "$fixtures/resnet_tiny.pt" "$(spec src-train)" "$(spec src-test)" \
  "$work/ft" 1)"
echo "$out"
echo "$out" | grep -q "test accuracy" || fail "finetune_torchscript"
[ -s "$work/ft/model.ckpt" ] || fail "finetune_torchscript wrote no model"
"$prefix/bin/graft" eval --model "$work/ft/model.ckpt" --data "$(spec src-test)" >/dev/null || fail "graft eval of the fine-tuned model"
out="$("$work/examples/dann" "$(spec src-train)" "$(spec tgt-train)@unlabelled" "$(spec tgt-test)" "$work/dann" 2)"
echo "$out"
echo "$out" | grep -q "selected epoch" || fail "dann"
[ -s "$work/dann/model.ckpt" ] || fail "dann wrote no model"
echo "install test: OK (prefix $prefix)"
