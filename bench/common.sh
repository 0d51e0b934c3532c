# Shared by the bench scripts: paths, the Python peer, and a JSON field reader.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$here/build}"
py=/usr/bin/python3   # Debian's python3 with python3-torch/torchvision (peers only)
cache="${GRAFT_DATA:-${HOME:-/root}/.cache/graft}"
[ -x "$build/graft" ] || { echo "build graft first: scripts/build.sh" >&2; exit 1; }
# field FILE_OR_JSON KEY: print a numeric field of a one-line JSON object
field() { "$py" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
min() { "$py" -c 'import sys; print(min(float(v) for v in sys.argv[1:]))' "$@"; }
ratio() { "$py" -c 'import sys; print("%.2f" % (float(sys.argv[1]) / float(sys.argv[2])))' "$1" "$2"; }
# graft's allocator settings (core/runtime.h tune_allocator) as glibc tunables, for the
# "tuned" Python peers: mmap threshold at its 32 MiB maximum, trim threshold 1 GiB, no mmap.
tuned="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_max=0"
