#!/bin/sh
# Speed ratios against ONNX Runtime int8 on this machine: batch-1 latency and batch-256
# throughput at 1 and 2 threads, for every integer kernel set this CPU runs, all from the binary
# users build (`swift build -c release`; RRAM_EDGE_INT_KERNELS chooses the set), measured
# interleaved (ORT, portable, avx2, ORT, ...) so that all see the same load; the figures are
# medians over ROUNDS rounds.
#
# ORT is not part of the project: the reference script (shared/bench/ort_reference.py next to
# the repository, or $ORT_SCRIPT) runs in its own venv ($ORT_PYTHON, default /tmp/ortref/bin/python;
# set-up: python3 -m venv /tmp/ortref && /tmp/ortref/bin/pip install numpy onnx onnxruntime sympy).
# Without it the script still prints our figures.
#
# usage: scripts/bench-vs-ort.sh [MODEL] [ROUNDS]      (default golden/fashion-mnist.rram, 3)
#        SKIP_BUILD=1 uses the binary already in .build/release.
set -eu
cd "$(dirname "$0")/.."
MODEL=${1:-golden/fashion-mnist.rram}
ROUNDS=${2:-3}
DATA=${FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
ORT_PYTHON=${ORT_PYTHON:-/tmp/ortref/bin/python}
ORT_SCRIPT=${ORT_SCRIPT:-$(cd .. && pwd)/shared/bench/ort_reference.py}
OUT=${BENCH_OUT:-/tmp/bench-vs-ort}
mkdir -p "$OUT"
rm -f "$OUT"/*.jsonl
if [ "${SKIP_BUILD:-0}" != 1 ]; then swift build -c release >/dev/null; fi
BIN=.build/release/edgecli
SETS=$("$BIN" version --json | python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["int_kernels_available"]))')

HAVE_ORT=0
if [ -x "$ORT_PYTHON" ] && [ -f "$ORT_SCRIPT" ]; then HAVE_ORT=1; else echo "ORT reference not found ($ORT_PYTHON, $ORT_SCRIPT): our figures only"; fi

r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "round $r/$ROUNDS ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'))"
    if [ "$HAVE_ORT" = 1 ]; then
        "$ORT_PYTHON" "$ORT_SCRIPT" --out "$OUT/ort-models" | grep '"threads"' >> "$OUT/ort.jsonl"
    fi
    for set in $SETS; do
        RRAM_EDGE_INT_KERNELS=$set "$BIN" bench infer "$MODEL" --data "$DATA" --threads 1,2 --json >> "$OUT/$set.jsonl"
    done
    r=$((r + 1))
done

python3 - "$OUT" "$HAVE_ORT" $SETS <<'EOF'
import json, statistics, sys
out, have_ort, sets = sys.argv[1], sys.argv[2] == "1", sys.argv[3:]
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
print("medians over rounds; ratio = ours / ORT int8")
print(f"{'kernel set':<11} {'thr':>3} {'lat us':>8} {'ORT us':>8} {'lat ratio':>9} {'img/s':>8} {'ORT img/s':>9} {'thr ratio':>9}")
for name in sets:
    lat, thr = ours(name)
    for t in sorted(lat):
        ol, ot = ort_lat.get(t), ort_thr.get(t)
        lr = f"{lat[t] / ol:.2f}" if ol else "-"
        tr = f"{thr[t] / ot:.2f}" if ot else "-"
        ols = f"{ol:.1f}" if ol else "-"
        ots = f"{ot:.0f}" if ot else "-"
        print(f"{name:<11} {t:>3} {lat[t]:>8.1f} {ols:>8} {lr:>9} {thr[t]:>8.0f} {ots:>9} {tr:>9}")
EOF
