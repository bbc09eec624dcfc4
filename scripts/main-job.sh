#!/usr/bin/env bash
# The main job on a fresh Debian machine with Swift 6: install what is missing, build the
# release edgecli, and run the whole chain on Fashion-MNIST into runs/fashion-mnist.
# Extra arguments go to `edgecli pipeline` (e.g. --epochs 2 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
swift build -c release --product edgecli
exec .build/release/edgecli pipeline --task fashion-mnist --out runs/fashion-mnist "$@"
