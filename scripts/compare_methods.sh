#!/usr/bin/env bash
# Every few-step method of onestep on the 2-D suite, side by side: EDM (the diffusion model, Heun), ECT and sCD
# (both tuned from that EDM model), iCT, sCT and MeanFlow (from scratch), each at the same number of training points
# and at the same CPU time, with the sliced Wasserstein-2 distance (SWD) of 10k one- and two-step samples to the
# distribution's held-out set, as a multiple of the data floor and of the EDM model. docs/method-comparison.md
# explains the budgets and holds the table.
#
# Budgets (every training on one thread, so that two run side by side on 2 cores without sharing one):
#   points  every method trains STEPS steps of batch 512 (the same points); ECT's 8 stages and the sCM tangent
#           warm-up (10% of the run) follow the run length, iCT's curriculum follows it by itself.
#   time    every method trains for the CPU seconds that ECT's STEPS steps take: its step count is
#           STEPS x cost(ECT) / cost(method), from the calibration below (one run serves both budgets when that is
#           within 5% of STEPS).
#   cost    CPU seconds (user + system) per 1000 steps, measured on eight-gaussians with CALIB steps of each method
#           on one thread (process start-up included: about 2% of a 1000-step run); the JVP's share of a step comes from `onestep_bench --benchmark_filter=Jvp` (bench/).
#
# Environment:
#   ONESTEP_COMPARE_DISTS     distributions (default: the five of the 2-D suite)
#   ONESTEP_COMPARE_RUNS      where runs go (default runs/compare); <runs>/<dist>/<method>[-time][-s<seed>]
#   ONESTEP_COMPARE_STEPS     the equal-points budget in steps of 512 (default 4000, the EDM model's own length)
#   ONESTEP_COMPARE_SEEDS     training seeds (default "0"); evaluation always averages 3 sampling seeds
#   ONESTEP_COMPARE_CALIB     calibration steps per method (default 1000)
#   ONESTEP_COMPARE_JOBS      trainings at once (default 2)
#   ONESTEP_COMPARE_EDM_LEVELS  Heun levels of the EDM model (default 40, as scripts/points_evidence.sh)
# Finished runs are reused. The table goes to <runs>/comparison.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${ONESTEP_BIN:-${ONESTEP_BUILD_DIR:-$ROOT/build}/onestep}"
[ -x "$BIN" ] || "$ROOT/scripts/setup.sh"
CFG="$ROOT/configs"
RUNS="$(realpath -m "${ONESTEP_COMPARE_RUNS:-runs/compare}")"
STEPS="${ONESTEP_COMPARE_STEPS:-4000}"
SEEDS="${ONESTEP_COMPARE_SEEDS:-0}"
CALIB="${ONESTEP_COMPARE_CALIB:-1000}"
JOBS="${ONESTEP_COMPARE_JOBS:-2}"
LEVELS="${ONESTEP_COMPARE_EDM_LEVELS:-40}"
DISTS="${ONESTEP_COMPARE_DISTS:-eight-gaussians thin-rings thin-spiral skewed-checkerboard mixed-widths}"
METHODS=(ect ict sct scd meanflow)
TABLE="$RUNS/comparison.md"
COSTS="$RUNS/costs.txt"
mkdir -p "$RUNS"
say() { echo; echo "== $*"; }

# The overrides that make a preset run STEPS steps with its step-dependent settings scaled along.
budget_args() {  # budget_args METHOD STEPS
  local method="$1" steps="$2"
  echo "--set train.steps=$steps --set train.threads=1 --set train.checkpoint_every=$steps"
  case "$method" in
    ect) echo "--set objective.stage_length=$((steps * 512 / 8))" ;;
    sct | scd) echo "--set objective.tangent_warmup=$(((steps + 9) / 10))" ;;
  esac
}

# train_one DIST METHOD STEPS SEED RUN: one training (skipped when its model exists); CPU seconds to RUN/cpu_seconds.
train_one() {
  local dist="$1" method="$2" steps="$3" seed="$4" run="$5"
  [ -f "$run/model.safetensors" ] && return 0
  # ECT and sCD start from (and sCD distils) the EDM model of the same seed beside the run.
  local teacher extra=()
  teacher="$(dirname "$run")/edm-s$seed/model.safetensors"
  case "$method" in
    ect) extra=(--init "$teacher") ;;
    scd) extra=(--init "$teacher" --set "objective.teacher=$teacher") ;;
  esac
  if [ ${#extra[@]} -gt 0 ]; then  # the EDM model may still be training beside this job
    while [ ! -f "$teacher" ]; do
      [ -f "$(dirname "$teacher").ended" ] && { echo "no EDM model for $run: $teacher"; return 1; }
      sleep 5
    done
  fi
  rm -rf "$run" "$run.ended"
  mkdir -p "$(dirname "$run")"
  # shellcheck disable=SC2046
  /usr/bin/time -f "%U %S %e" -o "$run.time" "$BIN" train --config "$CFG/points-$method.toml" \
    --set "data.dataset=$dist" --set "train.seed=$seed" $(budget_args "$method" "$steps") "${extra[@]}" \
    --run "$run" >"$run.log" 2>&1 || { touch "$run.ended"; echo "training failed: $run (log: $run.log)"; tail -3 "$run.log"; return 1; }
  touch "$run.ended"
  awk '{printf "%.1f\n", $1 + $2}' "$run.time" >"$run/cpu_seconds"
  echo "$dist $method ($steps steps, seed $seed): $(cat "$run/cpu_seconds") CPU s"
}

# run_jobs: runs the lines of stdin ("dist method steps seed run") JOBS at a time.
run_jobs() {
  local failed=0
  while read -r dist method steps seed run; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || failed=1; done
    train_one "$dist" "$method" "$steps" "$seed" "$run" &
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || failed=1; done
  return $failed
}

say "calibration: CPU seconds per 1000 steps, $CALIB steps of each method on eight-gaussians, one thread"
calib="$RUNS/calibration"
train_one eight-gaussians edm "$CALIB" 0 "$calib/edm-s0"
for m in "${METHODS[@]}"; do echo "eight-gaussians $m $CALIB 0 $calib/$m-s0"; done | JOBS=1 run_jobs
: >"$COSTS"
for m in edm "${METHODS[@]}"; do
  echo "$m $(awk -v n="$CALIB" '{printf "%.2f", $1 * 1000 / n}' "$calib/$m-s0/cpu_seconds")" >>"$COSTS"
done
cat "$COSTS"
cost() { awk -v m="$1" '$1 == m {print $2}' "$COSTS"; }
time_steps() {  # the step count of METHOD that costs what ECT's STEPS steps cost
  awk -v s="$STEPS" -v a="$(cost ect)" -v b="$(cost "$1")" 'BEGIN {printf "%d", s * a / b + 0.5}'
}
# A method whose step costs within 5% of ECT's has one run for both budgets.
needs_time_run() {
  [ "$1" != ect ] && awk -v s="$STEPS" -v t="$(time_steps "$1")" 'BEGIN {exit !(t < 0.95 * s || t > 1.05 * s)}'
}

# swd DIST PRESET CKPT STEPS... -> one line "K mean sd floor_multiple" per step count, from onestep eval's summary
swd() {
  local dist="$1" preset="$2" ckpt="$3"
  shift 3
  "$BIN" eval --config "$CFG/$preset.toml" --set "data.dataset=$dist" --ckpt "$ckpt" --metric swd \
    --steps "$(IFS=,; echo "$*")" --seeds 3 |
    sed -nE 's/^([0-9]+)-step SWD \(n = [0-9]+, [0-9]+ seeds?\): ([0-9.]+) \+- ([0-9.]+), best.*, ([0-9.]+)x floor$/\1 \2 \3 \4/p'
}
# cell FILE K EDM_SWD: "mean (x floor, x EDM)" over the seeds' lines of step count K
cell() {
  awk -v k="$2" -v e="$3" '$1 == k {s += $2; x += $4; n++}
    END {if (n) printf "%.4f (%.2fx, %.2fx)", s / n, x / n, s / n / e; else printf "-"}' "$1"
}

# train_dist DIST: the EDM model(s) and every method at both budgets, the methods that start from the EDM model last
# (train_one waits for it).
train_dist() {
  local dist="$1" seed m
  say "$dist: EDM (points-edm, its preset's 4000 steps), then every method at $STEPS steps and at ECT's CPU time"
  for seed in $SEEDS; do
    echo "$dist edm 4000 $seed $RUNS/$dist/edm-s$seed"
    for m in ict sct meanflow ect scd; do
      echo "$dist $m $STEPS $seed $RUNS/$dist/$m-s$seed"
      if needs_time_run "$m"; then echo "$dist $m $(time_steps "$m") $seed $RUNS/$dist/$m-time-s$seed"; fi
    done
  done | run_jobs
}

say "per distribution: training, then SWD to the held-out set (3 sampling seeds per model)"
{
  echo "| distribution | method | budget | steps | CPU s / 1000 steps | 1 step SWD (x floor, x EDM) | 2 steps SWD (x floor, x EDM) |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
} >"$TABLE"
for dist in $DISTS; do
  train_dist "$dist"
  vals="$RUNS/$dist/edm.swd"
  if [ ! -s "$vals" ]; then
    for seed in $SEEDS; do swd "$dist" points-edm "$RUNS/$dist/edm-s$seed/model.safetensors" "$LEVELS"; done >"$vals"
  fi
  edm_swd="$(awk '{s += $2; n++} END {printf "%.6f", s / n}' "$vals")"
  echo "| $dist | EDM, Heun $LEVELS levels | teacher | 4000 | $(cost edm) | $(cell "$vals" "$LEVELS" "$edm_swd") | |" >>"$TABLE"
  for m in "${METHODS[@]}"; do
    for budget in points time; do
      suffix=""; steps="$STEPS"; label="$budget"
      if [ "$budget" = time ]; then
        needs_time_run "$m" || continue
        suffix="-time"; steps="$(time_steps "$m")"
      elif ! needs_time_run "$m"; then
        label="points = time"
      fi
      vals="$RUNS/$dist/$m$suffix.swd"
      if [ ! -s "$vals" ]; then
        for seed in $SEEDS; do swd "$dist" "points-$m" "$RUNS/$dist/$m$suffix-s$seed/model.safetensors" 1 2; done >"$vals"
      fi
      echo "| $dist | $m | $label | $steps | $(cost "$m") | $(cell "$vals" 1 "$edm_swd") | $(cell "$vals" 2 "$edm_swd") |" >>"$TABLE"
    done
  done
  tail -n 9 "$TABLE"
done
say "table: $TABLE"
cat "$TABLE"
