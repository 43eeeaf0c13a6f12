#!/usr/bin/env bash
# The 2-D evidence on the CPU: for every distribution, EDM diffusion (points-edm), ECT tuned from it
# (points-ect --init) and iCT from scratch (points-ict); then the sliced Wasserstein-2 distance (SWD) of 10k samples
# to the distribution's fixed held-out set of 10k points, over seeds, as a number and as a multiple of the data floor
# (the SWD between the held-out set and a second fresh draw), and density images of the data and of every sampler.
#
# Distributions: eight-gaussians (standardized) and the hard suite at raw, unequal scales: thin-rings, thin-spiral,
# skewed-checkerboard, mixed-widths. Each takes about 10 minutes on 2 idle cores with the presets' step counts
# (eight-gaussians: 598 s, of which points-ect's and points-ict's 20000 steps 245 s and 267 s; bench/RESULTS.md).
#
# Environment:
#   ONESTEP_POINTS_DISTS       distributions (default: all five)
#   ONESTEP_POINTS_RUNS        where runs go (default runs); runs/points-<dist>/{edm,ect,ict}
#   ONESTEP_POINTS_SEEDS       evaluation seeds (default 3)
#   ONESTEP_POINTS_EDM_STEPS   override train.steps of points-edm (default: the preset's 4000)
#   ONESTEP_POINTS_CT_STEPS    override train.steps of points-ect and points-ict (default: the presets' 20000);
#                              ECT's stage_length is rescaled so that it still runs 8 stages
#   ONESTEP_POINTS_EDM_LEVELS  Heun levels of the EDM model's samples (default 40: 79 network evaluations; 18 levels
#                              leave thin structure 1.2-1.5x farther from the data, docs/points-suite.md)
#   ONESTEP_POINTS_SET         extra --set overrides for every training, e.g. "objective.huber_c=0.03"
# Finished runs are reused; delete runs/points-<dist> to train again. The table goes to runs/points-suite.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
BIN="${ONESTEP_BUILD_DIR:-$ROOT/build}/onestep"
RUNS="${ONESTEP_POINTS_RUNS:-runs}"
SEEDS="${ONESTEP_POINTS_SEEDS:-3}"
DISTS="${ONESTEP_POINTS_DISTS:-eight-gaussians thin-rings thin-spiral skewed-checkerboard mixed-widths}"
EDM_STEPS="${ONESTEP_POINTS_EDM_STEPS:-}"
CT_STEPS="${ONESTEP_POINTS_CT_STEPS:-}"
EDM_LEVELS="${ONESTEP_POINTS_EDM_LEVELS:-40}"
TABLE="$RUNS/points-suite.md"
say() { echo; echo "== $*"; }

EXTRA=()
for assignment in ${ONESTEP_POINTS_SET:-}; do EXTRA+=(--set "$assignment"); done

train() {  # train DIST MODEL PRESET [extra args...]
  local dist="$1" model="$2" preset="$3"
  shift 3
  local run="$RUNS/points-$dist/$model"
  local steps=()
  if [ "$model" = edm ] && [ -n "$EDM_STEPS" ]; then steps=(--set "train.steps=$EDM_STEPS"); fi
  if [ "$model" != edm ] && [ -n "$CT_STEPS" ]; then
    steps=(--set "train.steps=$CT_STEPS")
    # 8 ECT stages whatever the length (the preset: 1280000 images = 2500 steps of 512).
    if [ "$model" = ect ]; then steps+=(--set "objective.stage_length=$((CT_STEPS * 512 / 8))"); fi
  fi
  if [ -f "$run/model.safetensors" ]; then
    echo "already trained: $run/model.safetensors"
  elif [ -f "$run/config.toml" ]; then
    "$BIN" train --run "$run" --resume
  else
    local start=$SECONDS
    "$BIN" train --config "$preset" --set "data.dataset=$dist" "${steps[@]}" "${EXTRA[@]}" --run "$run" "$@"
    echo "$dist $model: trained in $((SECONDS - start)) s"
  fi
}

# evaluate DIST MODEL PRESET STEPS LABEL NFE: one table row from `onestep eval`'s summary line.
evaluate() {
  local dist="$1" model="$2" preset="$3" steps="$4" label="$5" nfe="$6"
  local out line mean mult
  out="$("$BIN" eval --config "$preset" --set "data.dataset=$dist" \
    --ckpt "$RUNS/points-$dist/$model/model.safetensors" --metric swd --steps "$steps" --seeds "$SEEDS")"
  echo "$out"
  line="$(grep -- "-step SWD (n = " <<<"$out" | tail -1)"
  mean="$(sed -E 's/.*: ([0-9.]+) \+- ([0-9.]+), best.*/\1 +- \2/' <<<"$line")"
  mult="$(sed -E 's/.*, ([0-9.]+)x floor$/\1/' <<<"$line")"
  echo "| $dist | $model | $label | $nfe | $mean | $mult |" >>"$TABLE"
}

mkdir -p "$RUNS"
echo "| distribution | model | sampler | NFE | SWD (mean +- sd, $SEEDS seeds) | x floor |" >"$TABLE"
echo "| --- | --- | --- | --- | --- | --- |" >>"$TABLE"
for dist in $DISTS; do
  dir="$RUNS/points-$dist"
  say "$dist: EDM diffusion (the teacher ECT starts from)"
  train "$dist" edm points-edm
  say "$dist: ECT, tuned from the EDM model"
  train "$dist" ect points-ect --init "$dir/edm/model.safetensors"
  say "$dist: iCT from scratch"
  train "$dist" ict points-ict

  say "$dist: SWD to the held-out set"
  # The floor and the reference image need no model: the cheapest sampler (Heun, 2 levels) stands in for one.
  floor="$("$BIN" eval --config points-edm --set "data.dataset=$dist" --ckpt "$dir/edm/model.safetensors" \
    --metric swd --steps 2 --seeds 1 --write-ref "$dir/data.png" | sed -nE 's/^SWD floor .*: ([0-9.]+)$/\1/p')"
  echo "| $dist | data | held-out vs fresh draw (floor) | - | $floor | 1.00 |" >>"$TABLE"
  evaluate "$dist" edm points-edm "$EDM_LEVELS" "Heun, $EDM_LEVELS levels" $((2 * EDM_LEVELS - 1))
  evaluate "$dist" edm points-ect 1 "1 step (ECT's start)" 1
  for model in ect ict; do
    evaluate "$dist" "$model" "points-$model" 1 "1 step" 1
    evaluate "$dist" "$model" "points-$model" 2 "2 steps" 2
  done

  say "$dist: density images (10k samples each) in $dir"
  "$BIN" sample --ckpt "$dir/edm/model.safetensors" --sampler heun --steps "$EDM_LEVELS" --n 10000 \
    --out "$dir/edm-heun$EDM_LEVELS.png"
  for model in ect ict; do
    # From the first noise level the run recorded with its model (the presets' [sample] sigma_max: points-ect 5,
    # points-ict 10; docs/points-ablation-*.md), as `onestep eval` above.
    for steps in 1 2; do
      "$BIN" sample --ckpt "$dir/$model/model.safetensors" --steps "$steps" --n 10000 \
        --out "$dir/$model-${steps}step.png"
    done
  done
done

say "SWD to the held-out sets ($TABLE)"
cat "$TABLE"
