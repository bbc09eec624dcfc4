#!/bin/sh
# Inference figures of a frozen model (docs/DATAPATH.md section 14): accuracy and resident memory of
# `edgecli run` over the Fashion-MNIST test set, and `edgecli bench infer` (batch-1 latency median of
# 2000 runs, batch-256 throughput, 1 and 2 threads) for the portable build and the host-tuned build.
#
# Both builds link the Swift runtime statically (`--static-swift-stdlib`): the memory figure is for
# that build (a dynamically linked Foundation alone costs ~17 MB of resident memory at start-up).
#   portable:   swift build -c release --static-swift-stdlib
#   host-tuned: swift build -c release --static-swift-stdlib -Xswiftc -target-cpu -Xswiftc native
#               (AVX2 on an x86-64 host without AVX-512; not portable to older CPUs)
# usage: scripts/bench-infer.sh MODEL [DATA_DIR]
set -eu
MODEL=$1
DATA=${2:-/usr/share/datasets/fashion-mnist}
NATIVE=${NATIVE_SCRATCH:-.build-native}
swift build -c release --static-swift-stdlib
swift build -c release --static-swift-stdlib -Xswiftc -target-cpu -Xswiftc native --scratch-path "$NATIVE"
PORTABLE_BIN=.build/release/edgecli
NATIVE_BIN=$NATIVE/release/edgecli
echo "== run (portable, static): accuracy and peak resident memory"
/usr/bin/time -v "$PORTABLE_BIN" run "$MODEL" --input "$DATA/t10k-images-idx3-ubyte.gz" \
    --labels "$DATA/t10k-labels-idx1-ubyte.gz" --out /tmp/bench-infer-logits.npy --json 2>&1 \
    | grep -E '^\{|Maximum resident'
echo "== bench infer (portable)"
"$PORTABLE_BIN" bench infer "$MODEL" --data "$DATA" --json
echo "== bench infer (host-tuned: -target-cpu native)"
"$NATIVE_BIN" bench infer "$MODEL" --data "$DATA" --json
