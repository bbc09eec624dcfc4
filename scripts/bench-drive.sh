#!/bin/sh
# Training speed of the DRIVE supermask U-Net against a PyTorch reference of the same training on
# this machine: `edgecli bench train --task drive` and scripts/drive_unet_torch.py train, the same
# number of batches of 64 48x48 crops at the same thread count, interleaved over ROUNDS rounds
# (the order alternates round by round, so that both see the same load); prints the medians and
# the ratio ours / PyTorch of seconds per epoch (per 70-batch epoch, extrapolated from the timed
# batches when BATCHES < 70). Then, where the venv has ONNX Runtime, the ORT float and int8
# figures for one full 584x565 image (padded to 592x576).
#
# Ours: plain `swift build -c release` (.build/release/edgecli; SKIP_BUILD=1 uses the binary
# already there). PyTorch and ORT are not part of the project: they run in their own venv
# ($TORCH_PYTHON, default /tmp/torchref/bin/python; set-up in the docstring of
# scripts/drive_unet_torch.py). Without it the script prints our figures only.
#
# usage: scripts/bench-drive.sh [ROUNDS]       (default 3)
#   BATCHES=70   timed batches per run (70 = a full epoch of the 4500 patches; 10 for a short
#                measurement: --limit-train 640 on our side, --batches 10 on the PyTorch side)
#   THREADS=2    threads on both sides
#   ORT=1        also the ORT inference figures (0: skip); ORT_RUNS=20, ORT_THREADS=1,2
#   DRIVE_DIR    the DRIVE folder (default shared/data/drive next to the repository)
#   BENCH_OUT    where the JSON lines go (default /tmp/bench-drive)
set -eu
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
BATCHES=${BATCHES:-70}
THREADS=${THREADS:-2}
ORT=${ORT:-1}
ORT_RUNS=${ORT_RUNS:-20}
ORT_THREADS=${ORT_THREADS:-1,2}
DRIVE_DIR=${DRIVE_DIR:-$(cd .. && pwd)/shared/data/drive}
TORCH_PYTHON=${TORCH_PYTHON:-/tmp/torchref/bin/python}
TORCH_SCRIPT=scripts/drive_unet_torch.py
OUT=${BENCH_OUT:-/tmp/bench-drive}
BIN=.build/release/edgecli
mkdir -p "$OUT"
rm -f "$OUT"/ours.jsonl "$OUT"/torch.jsonl "$OUT"/ort.jsonl

if [ "${SKIP_BUILD:-0}" != 1 ]; then swift build -c release >/dev/null; fi
[ -x "$BIN" ] || { echo "no $BIN (build it, or unset SKIP_BUILD)"; exit 1; }

DATA_OPT=""
if [ -d "$DRIVE_DIR" ]; then DATA_OPT="--data $DRIVE_DIR"; else echo "no DRIVE at $DRIVE_DIR: both sides time synthetic patches"; fi
LIMIT_OPT=""
if [ "$BATCHES" -lt 70 ]; then LIMIT_OPT="--limit-train $((BATCHES * 64))"; fi

HAVE_TORCH=0
if [ -x "$TORCH_PYTHON" ] && "$TORCH_PYTHON" -c 'import torch' 2>/dev/null; then HAVE_TORCH=1; else echo "PyTorch reference not found ($TORCH_PYTHON): our figures only"; fi

ours() {
    # shellcheck disable=SC2086
    "$BIN" bench train --task drive --epochs 1 --threads "$THREADS" --batch 64 $LIMIT_OPT $DATA_OPT --json >> "$OUT/ours.jsonl"
}
torchref() {
    # shellcheck disable=SC2086
    "$TORCH_PYTHON" "$TORCH_SCRIPT" train --epochs 1 --threads "$THREADS" --batches "$BATCHES" $DATA_OPT >> "$OUT/torch.jsonl"
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "round $r/$ROUNDS ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'))"
    if [ "$HAVE_TORCH" = 1 ] && [ $((r % 2)) = 0 ]; then torchref; fi
    ours
    if [ "$HAVE_TORCH" = 1 ] && [ $((r % 2)) = 1 ]; then torchref; fi
    r=$((r + 1))
done

HAVE_ORT=0
if [ "$HAVE_TORCH" = 1 ] && [ "$ORT" = 1 ]; then
    if "$TORCH_PYTHON" -c 'import onnxruntime, onnx, sympy' 2>/dev/null; then
        HAVE_ORT=1
        echo "ORT inference ($(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?'))"
        # shellcheck disable=SC2086
        if ! "$TORCH_PYTHON" "$TORCH_SCRIPT" onnx --threads "$ORT_THREADS" --runs "$ORT_RUNS" $DATA_OPT --out "$OUT/onnx" 2>"$OUT/ort.stderr" | grep '"threads"' >> "$OUT/ort.jsonl"; then
            echo "ORT run failed (see $OUT/ort.stderr)"; HAVE_ORT=0
        fi
    else
        echo "onnxruntime, onnx or sympy missing in the venv: no ORT figures"
    fi
fi

python3 - "$OUT" "$HAVE_TORCH" "$HAVE_ORT" "$BATCHES" <<'EOF'
import json, statistics, sys
out, have_torch, have_ort, batches = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", int(sys.argv[4])
EPOCH = 70
def lines(name):
    return [json.loads(l) for l in open(f"{out}/{name}.jsonl") if l.strip()]
ours = lines("ours")
o_ms = statistics.median(r["ms_per_batch"] for r in ours)
o_meas = statistics.median(r["seconds_per_epoch"] for r in ours)
print(f"medians over {len(ours)} rounds, {batches} timed batches of 64 per run, {ours[0]['threads']} threads, data {ours[0]['data']}, {ours[0]['float_kernels']} float kernels")
print(f"{'':<8} {'ms/batch':>9} {'measured s':>10} {'s/epoch(70)':>11}")
print(f"{'ours':<8} {o_ms:>9.1f} {o_meas:>10.2f} {o_ms * EPOCH / 1e3:>11.2f}")
if have_torch:
    tr = lines("torch")
    t_ms = statistics.median(r["ms_per_batch"] for r in tr)
    t_meas = statistics.median(r["train_s"] for r in tr)
    print(f"{'pytorch':<8} {t_ms:>9.1f} {t_meas:>10.2f} {t_ms * EPOCH / 1e3:>11.2f}")
    print(f"ratio ours / pytorch, seconds per epoch: {o_ms / t_ms:.2f}")
if have_ort:
    for r in lines("ort"):
        key = "ort_int8_ms_per_image" if r["engine"] == "ort-int8" else "ort_fp32_ms_per_image"
        print(f"{r['engine']:<8} {r['format']:<4} {r['threads']} thread(s): {r[key]:.1f} ms per 592x576 image (median of {r['runs']})")
EOF
