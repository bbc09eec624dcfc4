#!/bin/sh
# Inference figures of a frozen model (docs/DATAPATH.md section 14): accuracy and resident memory of
# `edgecli run` over the Fashion-MNIST test set, and `edgecli bench infer` (batch-1 latency median of
# 2000 runs, batch-256 throughput, 1 and 2 threads) for every integer kernel set this CPU runs
# (`edgecli version`; RRAM_EDGE_INT_KERNELS chooses the set), all from the one default build.
#
# The build links the Swift runtime statically (`--static-swift-stdlib`): the memory figure is for
# that build (a dynamically linked Foundation alone costs ~17 MB of resident memory at start-up).
# scripts/bench-vs-ort.sh compares every kernel set with ONNX Runtime int8.
# usage: scripts/bench-infer.sh MODEL [DATA_DIR]
set -eu
cd "$(dirname "$0")/.."
MODEL=$1
DATA=${2:-/usr/share/datasets/fashion-mnist}
swift build -c release --static-swift-stdlib --scratch-path .build-static
BIN=.build-static/release/edgecli
echo "== run (static): accuracy and peak resident memory"
/usr/bin/time -v "$BIN" run "$MODEL" --input "$DATA/t10k-images-idx3-ubyte.gz" \
    --labels "$DATA/t10k-labels-idx1-ubyte.gz" --out /tmp/bench-infer-logits.npy --json 2>&1 \
    | grep -E '^\{|Maximum resident'
for set in $("$BIN" version --json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["int_kernels_available"]))'); do
    echo "== bench infer (kernel set $set)"
    RRAM_EDGE_INT_KERNELS=$set "$BIN" bench infer "$MODEL" --data "$DATA" --json
done
