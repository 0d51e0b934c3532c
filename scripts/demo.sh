#!/usr/bin/env bash
# Quick start, command 1: set up this machine, build graft and run its main job on
# built-in data (`graft demo`: train on MNIST, measure the gap to an MNIST-M-style target,
# close it with DANN, compare with a few-label off-the-shelf probe; writes report.html).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
"$here/scripts/build.sh"
"${BUILD_DIR:-$here/build}/graft" demo --out "${DEMO_OUT:-$here/graft-demo}" "$@"
