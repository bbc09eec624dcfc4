#!/usr/bin/env bash
# Regenerates the committed golden vectors: a small software-TO Fashion-MNIST model
# (golden/fashion-mnist.rram) and, for the first 48 test images, the integer codes of every
# layer (golden/fashion-mnist/; docs/GOLDEN.md). `swift test`
# (VerifyTests.testCommittedGoldenVectors) checks that the kernels reproduce all 48 images bit
# for bit, so any change of integer semantics fails the build.
# Regenerate only on purpose (a deliberate change of the datapath or of freeze), and say so in
# the commit message.
#
# Size: golden/ must stay within 2,000,000 bytes (checked by VerifyTests). Points equal to an
# earlier point are stored once (aliases), every NPY file is gzip-compressed (--compress,
# deterministic bytes), and the float pipeline's values, which compress badly, are kept for the
# first 8 images only (--float-count 8); the integers are kept for all 48.
#
#   bash scripts/regenerate-golden.sh                 # retrain, freeze, then write the vectors
#   bash scripts/regenerate-golden.sh --vectors-only  # keep golden/fashion-mnist.rram, rewrite the vectors
set -euo pipefail
cd "$(dirname "$0")/.."
F=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
COUNT=48
FLOAT_COUNT=8
swift build -c release --product edgecli
E=.build/release/edgecli
if [ "${1:-}" != "--vectors-only" ]; then
    run=$(mktemp -d)/golden-run
    $E prune --task fashion-mnist --mode software --epochs 2 --seed 1 --data "$F" --out "$run"
    $E freeze "$run" --target rram-40nm-taox --data "$F" --eval 2000 --out golden/fashion-mnist.rram
fi
$E golden golden/fashion-mnist.rram --input "$F/t10k-images-idx3-ubyte.gz" --labels "$F/t10k-labels-idx1-ubyte.gz" \
    --count $COUNT --float-count $FLOAT_COUNT --compress --out golden/fashion-mnist --force
$E verify golden/fashion-mnist.rram --golden golden/fashion-mnist
du -sb golden

# ---- spoken digit (the CRNN; maintained with the rnn datapath) ---------------------------------
# golden/spoken-digit.rram: a software-TO spoken-digit CRNN (20 epochs, seed 1, target
# rram-40nm-taox; docs/DATAPATH.md section 15); golden/spoken-digit/: the first 32 test samples
# (IDX float32 features, encoded to 3-bit DAC codes), every layer and every rnn step, float
# values for the first 4, gzip. About 0.4 MB with the model (the conv1 tile codes dominate).
SD=${SPOKEN_DIGIT_DIR:-../shared/data/spoken-digit}
if [ "${1:-}" != "--vectors-only" ]; then
    sdrun=$(mktemp -d)/golden-sd-run
    $E prune --task spoken-digit --mode software --epochs 20 --seed 1 --data "$SD" --out "$sdrun"
    $E freeze "$sdrun" --target rram-40nm-taox --data "$SD" --out golden/spoken-digit.rram
fi
$E golden golden/spoken-digit.rram --input "$SD/test-features-idx3-float.gz" --labels "$SD/test-labels-idx1-ubyte.gz" \
    --count 32 --float-count 4 --compress --out golden/spoken-digit --force
$E verify golden/spoken-digit.rram --golden golden/spoken-digit
du -sb golden
# ---- end spoken digit ---------------------------------------------------------------------

# ---- residual net (layer graph: additions, global average pooling) ---------------------------
# golden/fashion-mnist-resnet.rram: a software-TO fashion-mnist-resnet of width 32 with two
# stages, no hidden layer and no flips (smaller than the task's default net, so that the
# vectors stay small; every op kind of the default is in it), 2 epochs, seed 1, target
# rram-40nm-taox; golden/fashion-mnist-resnet/: every node for the first 2 test images (both
# residual additions, the exact pooled sums), float values for the first, gzip. About 0.15 MB
# with the model (its maps are 32-64 channels wide).
if [ "${1:-}" != "--vectors-only" ]; then
    rnrun=$(mktemp -d)/golden-resnet-run
    $E prune --task fashion-mnist-resnet --mode software --width 32 --hidden 0 --stages 2 --no-flip --epochs 2 --seed 1 --data "$F" --out "$rnrun"
    # (freeze's default for a software-TO residual net: +-1 weight codes, docs/QUANT.md)
    $E freeze "$rnrun" --target rram-40nm-taox --data "$F" --eval 2000 --out golden/fashion-mnist-resnet.rram
fi
$E golden golden/fashion-mnist-resnet.rram --input "$F/t10k-images-idx3-ubyte.gz" --labels "$F/t10k-labels-idx1-ubyte.gz" \
    --count 2 --float-count 1 --compress --out golden/fashion-mnist-resnet --force
$E verify golden/fashion-mnist-resnet.rram --golden golden/fashion-mnist-resnet
du -sb golden
# ---- end residual net -------------------------------------------------------------------------

# ---- DRIVE U-Net (per-pixel head, padding, concatenation, bilinear upsampling) ----------------
# golden/drive.rram: a software-TO DRIVE U-Net of width 4 (levels 4-8-16-32-32 channels, every
# op of the paper's width-32 net; narrow so that the vectors stay small), 4 epochs, seed 1,
# target rram-40nm-taox, frozen for 48 x 48 inputs (--input-size 48: calibrated on the 48 x 48
# window of every training image, docs/SEGMENTATION.md); golden/drive/: every node for the window
# of the first test image, float values for it, gzip. About 0.33 MB with the model.
DR=${DRIVE_DIR:-../shared/data/drive}
if [ "${1:-}" != "--vectors-only" ]; then
    drrun=$(mktemp -d)/golden-drive-run
    $E prune --task drive --mode software --width 4 --epochs 4 --seed 1 --data "$DR" --out "$drrun"
    $E freeze "$drrun" --target rram-40nm-taox --input-size 48 --data "$DR" --out golden/drive.rram
fi
$E golden golden/drive.rram --drive --data "$DR" --count 1 --float-count 1 --compress --out golden/drive --force
$E verify golden/drive.rram --golden golden/drive
du -sb golden
# ---- end DRIVE --------------------------------------------------------------------------------
