#!/usr/bin/env bash
# Steps/s of data-parallel training on this machine's CPU: 1 process vs 2 Gloo processes (onestep launch) on the
# same global batch, points-ict (4-layer MLP, batch 512), and 1 process with gradient accumulation
# (train.batch_per_gpu = 64: 8 micro-batches per step). Usage: bench/distributed_cpu.sh [STEPS] [PRESET]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ONESTEP="${ONESTEP:-$ROOT/build/onestep}"
STEPS="${1:-300}"
PRESET="${2:-points-ict}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
common=(--config "$PRESET" --steps "$STEPS" --set train.log_every=1000000 --set train.sample_every=-1
        --set train.checkpoint_every=0)
run() {  # name, then the command
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$OUT/$name.log" 2>&1 || { cat "$OUT/$name.log"; exit 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" -v n="$STEPS" -v name="$name" \
    'BEGIN { printf "%s: %.1f s, %.2f steps/s\n", name, b - a, n / (b - a) }'
}
export OMP_NUM_THREADS=1
run "1 process, 1 thread " "$ONESTEP" train "${common[@]}" --set train.threads=1 --run "$OUT/one1"
run "1 process, 2 threads" env OMP_NUM_THREADS=2 "$ONESTEP" train "${common[@]}" --set train.threads=2 --run "$OUT/one2"
run "2 processes x 1 thread (gloo)" "$ONESTEP" launch --nproc 2 -- train "${common[@]}" --set train.threads=1 \
  --run "$OUT/two"
run "1 process, 1 thread, batch_per_gpu 64" "$ONESTEP" train "${common[@]}" --set train.threads=1 \
  --set train.batch_per_gpu=64 --run "$OUT/acc"
