#!/usr/bin/env bash
# Fashion-MNIST headline numbers over several training seeds: trains each preset once per seed (two trainings at a
# time, one CPU thread each, so that they do not share a core), scores each run with FD-FMNIST at 1 and 2 steps
# against the 10,000 test images, scores the shipped teacher with Heun (18 levels, 35 evaluations) over as many
# sampling seeds, and prints mean +- sd and the multiple of the teacher. docs/fmnist-ict.md holds the numbers.
#
# Environment:
#   ONESTEP_SEEDS_PRESETS  presets (default "fmnist-ect-cpu fmnist-ict-cpu-160k"); presets with "ect", "sct" or "scd" in the
#                          name start from the shipped teacher (--init), the others from scratch
#   ONESTEP_SEEDS          training seeds (default "0 1 2")
#   ONESTEP_SEEDS_RUNS     where runs go (default runs/seeds); <runs>/<preset>-s<seed>
#   ONESTEP_SEEDS_N        samples per FD (default 2000, the demo's; FD falls as n grows: compare at one n)
#   ONESTEP_SEEDS_JOBS     trainings at once (default 2)
#   ONESTEP_SEEDS_SET      extra overrides for every training, e.g. "train.steps=20" (a quick check of the script)
# Each run samples as its preset records (first noise level, 2-step middle level: [sample] and [eval]). Finished runs
# and scores are reused. The table goes to <runs>/seeds.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${ONESTEP_BIN:-${ONESTEP_BUILD_DIR:-$ROOT/build}/onestep}"
[ -x "$BIN" ] || "$ROOT/scripts/setup.sh"
PRESETS="${ONESTEP_SEEDS_PRESETS:-fmnist-ect-cpu fmnist-ict-cpu-160k}"
SEEDS="${ONESTEP_SEEDS:-0 1 2}"
RUNS="$(realpath -m "${ONESTEP_SEEDS_RUNS:-runs/seeds}")"
N="${ONESTEP_SEEDS_N:-2000}"
JOBS="${ONESTEP_SEEDS_JOBS:-2}"
EXTRA=()
for kv in ${ONESTEP_SEEDS_SET:-}; do EXTRA+=(--set "$kv"); done
TEACHER="$ROOT/assets/fmnist_edm_teacher.safetensors"
# A training's wall and CPU seconds go to <run>.time where GNU time is installed (the cost of a method's step).
TIMER=()
[ -x /usr/bin/time ] && TIMER=(/usr/bin/time -f "%e s wall %U s user %S s sys")
REF="$RUNS/fmnist-test-ref.npz"
mkdir -p "$RUNS"
[ -f "$REF" ] || "$BIN" eval stats --data fmnist-edm-cpu --set data.split=test --metric fd-fmnist --out "$REF"

# One run: train (one thread) unless finished, then score 1 and 2 steps once (sampling seed 1) into <run>/fd.txt.
train_and_score() {
  local preset=$1 seed=$2 run="$RUNS/$1-s$2" init=() timer=()
  ((${#TIMER[@]})) && timer=("${TIMER[@]}" -o "$run.time")
  [[ $preset == *ect* || $preset == *scd* || $preset == *sct* ]] && init=(--init "$TEACHER")
  if [ ! -f "$run/model.safetensors" ]; then
    if [ -f "$run/config.toml" ]; then
      "$BIN" train --run "$run" --resume > "$run.train.log" 2>&1
    else
      "${timer[@]}" "$BIN" train --config "$preset" --set train.seed="$seed" --set train.threads=1 "${EXTRA[@]}" "${init[@]}" --run "$run" \
        > "$run.train.log" 2>&1
    fi
  fi
  if [ ! -f "$run/fd.txt" ]; then
    OMP_NUM_THREADS=1 "$BIN" eval --ckpt "$run/model.safetensors" --steps 1,2 --n "$N" --ref "$REF" \
      --metric fd-fmnist --seeds 1 > "$run/fd.log" 2>&1
    local one two
    one=$(sed -n 's/^1-step FD-FMNIST, seed [0-9]*: \([0-9.]*\).*/\1/p' "$run/fd.log" | tail -1)
    two=$(sed -n 's/^2-step FD-FMNIST, seed [0-9]*: \([0-9.]*\).*/\1/p' "$run/fd.log" | tail -1)
    [ -n "$one" ] && [ -n "$two" ] || { echo "no FD in $run/fd.log" >&2; return 1; }
    printf '%s %s\n' "$one" "$two" > "$run/fd.txt.tmp" && mv "$run/fd.txt.tmp" "$run/fd.txt"
  fi
}

# The teacher with Heun over as many sampling seeds as there are training seeds (its training is fixed: the asset).
score_teacher() {
  local out="$RUNS/teacher-heun35-n$N.txt" count
  count=$(echo "$SEEDS" | wc -w)
  [ -f "$out" ] && return 0
  OMP_NUM_THREADS=1 "$BIN" eval --config fmnist-edm-cpu --ckpt "$TEACHER" --steps 18 --n "$N" --ref "$REF" \
    --metric fd-fmnist --seeds "$count" > "$RUNS/teacher.log" 2>&1
  sed -n 's/^[0-9]*-step FD-FMNIST, seed [0-9]*: \([0-9.]*\).*/\1/p' "$RUNS/teacher.log" > "$out.tmp"
  [ -s "$out.tmp" ] || { echo "no FD in $RUNS/teacher.log" >&2; return 1; }
  mv "$out.tmp" "$out"
}

pids=()
wait_slot() { while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done; }
score_teacher & pids+=($!)
for preset in $PRESETS; do
  for seed in $SEEDS; do
    wait_slot
    train_and_score "$preset" "$seed" & pids+=($!)
  done
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || { echo "a run failed: see $RUNS/*.log" >&2; exit 1; }

# mean and sample sd of the numbers on stdin
stats() { awk '{ s += $1; q += $1 * $1; n++ } END { m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0;
  if (v < 0) v = 0; printf "%.1f %.1f\n", m, sqrt(v) }'; }
read -r T_MEAN T_SD < <(stats < "$RUNS/teacher-heun35-n$N.txt")
{
  echo "FD-FMNIST, n = $N against the 10,000 test images; mean +- sd over training seeds ($SEEDS)"
  echo
  echo "| model | network evaluations | FD-FMNIST | x teacher (Heun) |"
  echo "| --- | --- | --- | --- |"
  echo "| teacher (shipped), Heun 18 levels, $(echo "$SEEDS" | wc -w) sampling seeds | 35 | $T_MEAN +- $T_SD | 1 |"
  for preset in $PRESETS; do
    for k in 1 2; do
      read -r mean sd < <(for seed in $SEEDS; do cut -d' ' -f"$k" "$RUNS/$preset-s$seed/fd.txt"; done | stats)
      echo "| $preset, $k step$([ "$k" = 2 ] && echo s) | $k | $mean +- $sd | $(awk -v a="$mean" -v b="$T_MEAN" 'BEGIN { printf "%.2f", a / b }') |"
    done
  done
} | tee "$RUNS/seeds.md"
