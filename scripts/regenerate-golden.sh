#!/usr/bin/env bash
# Regenerates the committed golden vectors: a small software-TO Fashion-MNIST model
# (golden/fashion-mnist.rram) and the integer codes of every layer for the first 8 test images
# (golden/fashion-mnist/). `swift test` (VerifyTests.testCommittedGoldenVectors) checks that
# the kernels reproduce them bit for bit, so any change of integer semantics fails the build.
# Regenerate only on purpose (a deliberate change of the datapath or of freeze), and say so
# in the commit message. 8 images keep golden/ under 2 MB (about 0.22 MB per image with the
# float values).
set -euo pipefail
cd "$(dirname "$0")/.."
F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
swift build -c release --product edgecli
E=.build/release/edgecli
run=$(mktemp -d)/golden-run
$E prune --task fashion-mnist --mode software --epochs 2 --seed 1 --data "$F" --out "$run"
$E freeze "$run" --target rram-40nm-taox --data "$F" --eval 2000 --out golden/fashion-mnist.rram
$E golden golden/fashion-mnist.rram --input "$F/t10k-images-idx3-ubyte.gz" --labels "$F/t10k-labels-idx1-ubyte.gz" \
    --count 8 --out golden/fashion-mnist --force
$E verify golden/fashion-mnist.rram --golden golden/fashion-mnist
