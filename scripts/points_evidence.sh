#!/usr/bin/env bash
# The 2-D evidence of issue 4 on the CPU (about 10 minutes on 2 cores): EDM diffusion on eight Gaussians, ECT tuned
# from it (--init), iCT from scratch; then the sliced Wasserstein-2 distance (SWD) of 10k samples to 10k fresh
# points, over 3 seeds, beside the data-vs-data floor and the diffusion model's 18-level Heun samples (35 NFE).
# Finished runs are reused; delete runs/points-* to train again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
BIN="${ONESTEP_BUILD_DIR:-$ROOT/build}/onestep"
RUNS="${ONESTEP_POINTS_RUNS:-runs}"
SEEDS="${ONESTEP_POINTS_SEEDS:-3}"
say() { echo; echo "== $*"; }

train() {  # train PRESET [extra args...]
  local preset="$1"
  shift
  local run="$RUNS/$preset"
  if [ -f "$run/model.safetensors" ]; then
    echo "already trained: $run/model.safetensors"
  elif [ -f "$run/config.toml" ]; then
    "$BIN" train --run "$run" --resume
  else
    local start=$SECONDS
    "$BIN" train --config "$preset" --run "$run" "$@"
    echo "$preset: trained in $((SECONDS - start)) s"
  fi
}

say "EDM diffusion (the teacher ECT starts from)"
train points-edm
say "ECT, tuned from points-edm"
train points-ect --init "$RUNS/points-edm/model.safetensors"
say "iCT from scratch"
train points-ict

say "points-edm: Heun, 18 levels (35 network evaluations)"
"$BIN" eval --config points-edm --ckpt "$RUNS/points-edm/model.safetensors" --metric swd --steps 18 --seeds "$SEEDS"
say "points-edm sampled in 1 step, D(80 z, 80): where ECT starts from"
"$BIN" eval --config points-ect --ckpt "$RUNS/points-edm/model.safetensors" --metric swd --steps 1 --seeds 1
for preset in points-ect points-ict; do
  say "$preset: 1 and 2 steps"
  "$BIN" eval --config "$preset" --ckpt "$RUNS/$preset/model.safetensors" --metric swd --steps 1,2 --seeds "$SEEDS"
done

say "samples (10k points each) as .npy and as density images"
for ext in npy png; do
  "$BIN" sample --ckpt "$RUNS/points-edm/model.safetensors" --sampler heun --steps 18 --n 10000 \
    --out "$RUNS/points-edm/samples-heun18.$ext"
  for preset in points-ect points-ict; do
    "$BIN" sample --ckpt "$RUNS/$preset/model.safetensors" --steps 1 --n 10000 --out "$RUNS/$preset/samples-1step.$ext"
  done
done
