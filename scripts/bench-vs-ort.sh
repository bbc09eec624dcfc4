#!/bin/sh
# Speed ratios against ONNX Runtime int8 on this machine: batch-1 latency and batch-256
# throughput at 1 and 2 threads, for the portable build and the host-tuned build, measured
# interleaved (ORT, portable, host-tuned, ORT, ...) so that all three see the same load; the
# figures are medians over ROUNDS rounds.
#
# The build flags live in scripts/build-flags.sh (one place): the portable build is plain
# `swift build -c release`; the host-tuned build adds $HOST_TUNED_FLAGS (AVX2 code generation and
# the u8 x i8 `vpmaddubsw` crossbar kernel, docs/DATAPATH.md section 12).
#
# ORT is not part of the project: the reference script (shared/bench/ort_reference.py next to
# the repository, or $ORT_SCRIPT) runs in its own venv ($ORT_PYTHON, default /tmp/ortref/bin/python;
# set-up: python3 -m venv /tmp/ortref && /tmp/ortref/bin/pip install numpy onnx onnxruntime).
# Without it the script still prints our figures.
#
# usage: scripts/bench-vs-ort.sh [MODEL] [ROUNDS]      (default golden/fashion-mnist.rram, 3)
set -eu
cd "$(dirname "$0")/.."
. scripts/build-flags.sh
MODEL=${1:-golden/fashion-mnist.rram}
ROUNDS=${2:-3}
DATA=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
ORT_PYTHON=${ORT_PYTHON:-/tmp/ortref/bin/python}
ORT_SCRIPT=${ORT_SCRIPT:-$(cd .. && pwd)/shared/bench/ort_reference.py}
OUT=${BENCH_OUT:-/tmp/bench-vs-ort}
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl

# (the same build commands as scripts/bench-infer.sh, so both share the build directories;
# SKIP_BUILD=1 uses the binaries already in $PORTABLE_SCRATCH and $HOST_TUNED_SCRATCH)
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    # shellcheck disable=SC2086
    swift build -c release --static-swift-stdlib $PORTABLE_FLAGS --scratch-path "$PORTABLE_SCRATCH" >/dev/null
    # shellcheck disable=SC2086
    swift build -c release --static-swift-stdlib $HOST_TUNED_FLAGS --scratch-path "$HOST_TUNED_SCRATCH" >/dev/null
fi

HAVE_ORT=0
if [ -x "$ORT_PYTHON" ] && [ -f "$ORT_SCRIPT" ]; then HAVE_ORT=1; else echo "ORT reference not found ($ORT_PYTHON, $ORT_SCRIPT): our figures only"; fi

r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "round $r/$ROUNDS ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'))"
    if [ "$HAVE_ORT" = 1 ]; then
        "$ORT_PYTHON" "$ORT_SCRIPT" --out "$OUT/ort-models" | grep '"threads"' >> "$OUT/ort.jsonl"
    fi
    for build in portable host-tuned; do
        if [ "$build" = portable ]; then bin=$PORTABLE_SCRATCH/release/edgecli; else bin=$HOST_TUNED_SCRATCH/release/edgecli; fi
        "$bin" bench infer "$MODEL" --data "$DATA" --threads 1,2 --json >> "$OUT/$build.jsonl"
    done
    r=$((r + 1))
done

python3 - "$OUT" "$HAVE_ORT" <<'EOF'
import json, statistics, sys
out, have_ort = sys.argv[1], sys.argv[2] == "1"
def ours(name):
    lat, thr = {}, {}
    for line in open(f"{out}/{name}.jsonl"):
        for r in json.loads(line)["results"]:
            lat.setdefault(r["threads"], []).append(r["latency_us_median"])
            thr.setdefault(r["threads"], []).append(r["images_per_second"])
    return ({t: statistics.median(v) for t, v in lat.items()}, {t: statistics.median(v) for t, v in thr.items()})
ort_lat, ort_thr = {}, {}
if have_ort:
    for line in open(f"{out}/ort.jsonl"):
        r = json.loads(line)
        if r.get("engine") == "ort-int8":
            ort_lat.setdefault(r["threads"], []).append(r["batch1_median_us"])
            ort_thr.setdefault(r["threads"], []).append(r["batch256_images_per_s"])
    ort_lat = {t: statistics.median(v) for t, v in ort_lat.items()}
    ort_thr = {t: statistics.median(v) for t, v in ort_thr.items()}
print("medians over rounds; ratio = ours / ORT int8 (target: latency <= 0.50, throughput >= 1.00)")
print(f"{'build':<11} {'thr':>3} {'lat us':>8} {'ORT us':>8} {'lat ratio':>9} {'img/s':>8} {'ORT img/s':>9} {'thr ratio':>9}")
for name in ("portable", "host-tuned"):
    lat, thr = ours(name)
    for t in sorted(lat):
        ol, ot = ort_lat.get(t), ort_thr.get(t)
        lr = f"{lat[t] / ol:.2f}" if ol else "-"
        tr = f"{thr[t] / ot:.2f}" if ot else "-"
        ols = f"{ol:.1f}" if ol else "-"
        ots = f"{ot:.0f}" if ot else "-"
        print(f"{name:<11} {t:>3} {lat[t]:>8.1f} {ols:>8} {lr:>9} {thr[t]:>8.0f} {ots:>9} {tr:>9}")
EOF
