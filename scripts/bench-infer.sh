#!/bin/sh
# Inference figures of a frozen model (docs/DATAPATH.md section 14): accuracy and resident memory of
# `edgecli run` over the Fashion-MNIST test set, and `edgecli bench infer` (batch-1 latency median of
# 2000 runs, batch-256 throughput, 1 and 2 threads) for the portable build and the host-tuned build.
#
# Both builds link the Swift runtime statically (`--static-swift-stdlib`): the memory figure is for
# that build (a dynamically linked Foundation alone costs ~17 MB of resident memory at start-up).
# The portable and host-tuned flags are in scripts/build-flags.sh (the one place they are written
# down); scripts/bench-vs-ort.sh compares both builds with ONNX Runtime int8.
# usage: scripts/bench-infer.sh MODEL [DATA_DIR]
set -eu
cd "$(dirname "$0")/.."
. scripts/build-flags.sh
MODEL=$1
DATA=${2:-/usr/share/datasets/fashion-mnist}
# shellcheck disable=SC2086
swift build -c release --static-swift-stdlib $PORTABLE_FLAGS --scratch-path "$PORTABLE_SCRATCH"
# shellcheck disable=SC2086
swift build -c release --static-swift-stdlib $HOST_TUNED_FLAGS --scratch-path "$HOST_TUNED_SCRATCH"
PORTABLE_BIN=$PORTABLE_SCRATCH/release/edgecli
NATIVE_BIN=$HOST_TUNED_SCRATCH/release/edgecli
echo "== run (portable, static): accuracy and peak resident memory"
/usr/bin/time -v "$PORTABLE_BIN" run "$MODEL" --input "$DATA/t10k-images-idx3-ubyte.gz" \
    --labels "$DATA/t10k-labels-idx1-ubyte.gz" --out /tmp/bench-infer-logits.npy --json 2>&1 \
    | grep -E '^\{|Maximum resident'
echo "== bench infer (portable)"
"$PORTABLE_BIN" bench infer "$MODEL" --data "$DATA" --json
echo "== bench infer (host-tuned: $HOST_TUNED_FLAGS)"
"$NATIVE_BIN" bench infer "$MODEL" --data "$DATA" --json
