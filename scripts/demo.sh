#!/usr/bin/env bash
# The main job on the embedded default: iCT from scratch on Fashion-MNIST on the CPU (at most ~10 minutes on
# 2 cores), then 1-step and 2-step samples and their FD-FMNIST beside the data floor.
# Installs and builds what is missing first (scripts/setup.sh). A second run reuses the finished run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
BIN="${ONESTEP_BUILD_DIR:-$ROOT/build}/onestep"
PRESET="${ONESTEP_DEMO_PRESET:-fmnist-ict-cpu}"
RUN="${ONESTEP_DEMO_RUN:-runs/demo-$PRESET}"
OUT="$RUN/demo"
N_EVAL="${ONESTEP_DEMO_EVAL_N:-10000}"
say() { echo; echo "== $*"; }

say "the network"
"$BIN" info --config "$PRESET"

say "training ($PRESET) into $RUN"
if [ -f "$RUN/model.safetensors" ]; then
  echo "already trained: $RUN/model.safetensors (delete $RUN to train again)"
elif [ -f "$RUN/config.toml" ]; then
  "$BIN" train --config "$PRESET" --run "$RUN" --resume   # continues a killed run from its last checkpoint
else
  "$BIN" train --config "$PRESET" --run "$RUN"
fi
MODEL="$RUN/model.safetensors"

say "sampling: 1 step and 2 steps (sigma_mid 0.821), 100 images each, from the EMA weights"
mkdir -p "$OUT"
"$BIN" sample --ckpt "$MODEL" --steps 1 --n 100 --seed 1 --out "$OUT/samples-1step.png"
"$BIN" sample --ckpt "$MODEL" --steps 2 --n 100 --seed 1 --out "$OUT/samples-2step.png"

say "FD-FMNIST of $N_EVAL samples against the Fashion-MNIST test set"
REF="$OUT/fmnist-test-ref.npz"
FLOOR="$OUT/fmnist-train10k.npz"
[ -f "$REF" ] || "$BIN" eval stats --data "$PRESET" --set data.split=test --metric fd-fmnist --out "$REF"
[ -f "$FLOOR" ] || "$BIN" eval stats --data "$PRESET" --set data.split=train --limit 10000 --metric fd-fmnist \
  --out "$FLOOR"
"$BIN" eval --ckpt "$MODEL" --steps 1,2 --n "$N_EVAL" --ref "$REF" --metric fd-fmnist --seeds 1
echo "data floor, FD-FMNIST of 10k training images against the test set:"
"$BIN" eval fd "$FLOOR" "$REF"

say "done: grids in $OUT/samples-1step.png and $OUT/samples-2step.png, metrics in $RUN/metrics.jsonl"
