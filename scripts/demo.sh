#!/usr/bin/env bash
# The main job: ECT tunes the shipped Fashion-MNIST diffusion teacher (assets/fmnist_edm_teacher.safetensors, a
# 0.31M-parameter UNet trained by onestep, assets/README.md) into a 1-/2-step model on the CPU, then samples and
# scores the teacher (Heun, 35 evaluations; and at 1 step, ECT's starting point) and the tuned model with FD-FMNIST
# beside the data floor (the teacher's scores are committed: assets/fmnist_edm_teacher.scores.txt). 658 s (11 minutes)
# on 2 idle cores in all, the 4000 ECT steps 625 s of it (timed 2026-12-08 03:11; the 2026-11-30 machine ran the same
# step twice as fast: 490 s then; bench/RESULTS.md, docs/results.md "Fashion-MNIST demo").
#   ONESTEP_DEMO_PRESET=fmnist-ict-cpu scripts/demo.sh   iCT from scratch instead (no teacher; 48k images, about 8
#                                                       minutes; fmnist-ict-cpu-160k: the teacher's 160k images)
#   ONESTEP_DEMO_EVAL_N=5000                            samples per FD (default 2000; FD falls as n grows, so compare
#                                                       numbers at one n only)
#   ONESTEP_DEMO_SIGMA_MID=0.821                        middle noise level of the 2-step sampler (ECT 1.5, iCT 0.821)
#   ONESTEP_DEMO_THREADS=1                              CPU threads of the training (default: the preset's, 2)
#   ONESTEP_DEMO_SCORE_TEACHER=1                        score the teacher here (default: its committed scores,
#                                                       assets/fmnist_edm_teacher.scores.txt, when n matches)
# Installs and builds what is missing first (scripts/setup.sh). A second run reuses the finished run and the
# teacher's scores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup.sh"
BIN="${ONESTEP_BUILD_DIR:-$ROOT/build}/onestep"
PRESET="${ONESTEP_DEMO_PRESET:-fmnist-ect-cpu}"
RUN="${ONESTEP_DEMO_RUN:-runs/demo-$PRESET}"
OUT="$RUN/demo"
N_EVAL="${ONESTEP_DEMO_EVAL_N:-2000}"
TEACHER="$ROOT/assets/fmnist_edm_teacher.safetensors"
TRAIN_SET=()
[ -n "${ONESTEP_DEMO_THREADS:-}" ] && TRAIN_SET=(--set "train.threads=$ONESTEP_DEMO_THREADS")
INIT=()
SIGMA_MID=0.821   # iCT's and ECT's CIFAR-10 2-step sampler
case "$PRESET" in
  *ect*) INIT=(--init "$TEACHER")     # ECT starts from a diffusion model; iCT and EDM from scratch
         SIGMA_MID=1.5 ;;             # 2-step FD-FMNIST, n = 2000: 106.1 (1.0), 103.1 (1.5), 101.6 (2.2)
  *ict-cpu-160k*) SIGMA_MID=1.5 ;;    # as the preset's [eval] (docs/fmnist-ict.md)
esac
SIGMA_MID="${ONESTEP_DEMO_SIGMA_MID:-$SIGMA_MID}"
say() { echo; echo "== $*"; }
START=$SECONDS

say "the network"
"$BIN" info --config "$PRESET"

say "training ($PRESET${INIT:+, from the teacher $TEACHER}) into $RUN"
if [ -f "$RUN/model.safetensors" ]; then
  echo "already trained: $RUN/model.safetensors (delete $RUN to train again)"
elif [ -f "$RUN/config.toml" ]; then
  "$BIN" train --run "$RUN" --resume   # continues a killed run from its last checkpoint
else
  "$BIN" train --config "$PRESET" "${TRAIN_SET[@]}" "${INIT[@]}" --run "$RUN"
fi
MODEL="$RUN/model.safetensors"
echo "trained by $((SECONDS - START)) s"

say "sampling: 1 step and 2 steps (sigma_mid $SIGMA_MID), 100 images each (from the first noise level the model records)"
mkdir -p "$OUT"
"$BIN" sample --ckpt "$MODEL" --steps 1 --n 100 --seed 1 --out "$OUT/samples-1step.png"
"$BIN" sample --ckpt "$MODEL" --steps 2 --sigma-mid "$SIGMA_MID" --n 100 --seed 1 --out "$OUT/samples-2step.png"
if [ ${#INIT[@]} -gt 0 ]; then
  "$BIN" sample --ckpt "$TEACHER" --sampler heun --steps 18 --n 100 --seed 1 --out "$OUT/teacher-heun35.png"
  "$BIN" sample --ckpt "$TEACHER" --steps 1 --n 100 --seed 1 --out "$OUT/teacher-1step.png"
fi

say "FD-FMNIST of $N_EVAL samples against the Fashion-MNIST test set"
REF="$OUT/fmnist-test-ref.npz"
FLOOR="$OUT/fmnist-train10k.npz"
[ -f "$REF" ] || "$BIN" eval stats --data "$PRESET" --set data.split=test --metric fd-fmnist --out "$REF"
[ -f "$FLOOR" ] || "$BIN" eval stats --data "$PRESET" --set data.split=train --limit 10000 --metric fd-fmnist \
  --out "$FLOOR"
fd_of() { sed -n 's/.*-step FD-FMNIST, seed [0-9]*: \([0-9.]*\).*/\1/p' | tail -1; }
# Copies its input to stderr as well (to be seen while it is captured). Not `tee /dev/stderr`: that reopens the file
# behind stderr, which truncates a log the demo is redirected into (`scripts/demo.sh > log 2>&1`).
show() { while IFS= read -r line; do printf '%s\n' "$line"; printf '%s\n' "$line" >&2; done; }
if [ ${#INIT[@]} -gt 0 ]; then
  TEACHER_FD="$OUT/teacher-fd-n$N_EVAL.txt"   # the teacher is fixed: scored once per n
  # Its committed scores (assets/fmnist_edm_teacher.scores.txt) stand in for scoring it here when they are of this
  # file (sha256) and this n, unless ONESTEP_DEMO_SCORE_TEACHER=1.
  SCORES="$ROOT/assets/fmnist_edm_teacher.scores.txt"
  if [ ! -f "$TEACHER_FD" ] && [ -z "${ONESTEP_DEMO_SCORE_TEACHER:-}" ] && [ -f "$SCORES" ] && \
     [ "$(sed -n 's/^sha256 //p' "$SCORES")" = "$(sha256sum "$TEACHER" | cut -d' ' -f1)" ]; then
    committed=$(awk -v n="$N_EVAL" '$1 == n { print $2, $3 }' "$SCORES")
    if [ -n "$committed" ]; then
      echo "teacher: the committed scores of this file at n = $N_EVAL ($SCORES; ONESTEP_DEMO_SCORE_TEACHER=1 scores it)"
      echo "$committed" > "$TEACHER_FD"
    fi
  fi
  if [ ! -f "$TEACHER_FD" ]; then
    heun=$("$BIN" eval --config fmnist-edm-cpu --ckpt "$TEACHER" --steps 18 --n "$N_EVAL" --ref "$REF" \
      --metric fd-fmnist --seeds 1 | show | fd_of)
    one=$("$BIN" eval --ckpt "$TEACHER" --steps 1 --n "$N_EVAL" --ref "$REF" --metric fd-fmnist --seeds 1 \
      | show | fd_of)
    printf '%s %s\n' "$heun" "$one" > "$TEACHER_FD.tmp" && mv "$TEACHER_FD.tmp" "$TEACHER_FD"
  fi
  read -r TEACHER_HEUN TEACHER_1STEP < "$TEACHER_FD"
fi
STUDENT=$("$BIN" eval --ckpt "$MODEL" --steps 1,2 --set "eval.sigma_mid=$SIGMA_MID" --n "$N_EVAL" --ref "$REF" \
  --metric fd-fmnist --seeds 1 | show)
S1=$(echo "$STUDENT" | grep '^1-step' | fd_of)
S2=$(echo "$STUDENT" | grep '^2-step' | fd_of)
FLOOR_FD=$("$BIN" eval fd "$FLOOR" "$REF" | grep -o '[0-9][0-9.]*$' | tail -1)

say "summary: FD-FMNIST (n = $N_EVAL samples vs the 10k test images; lower is better)"
if [ ${#INIT[@]} -gt 0 ]; then
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx the teacher", a / b }'; }
  printf '  %-40s %10s\n' "teacher, Heun 18 levels (35 evaluations)" "$TEACHER_HEUN" \
    "teacher at 1 step (ECT's starting point)" "$TEACHER_1STEP"
  printf '  %-40s %10s   %s\n' "$PRESET, 1 step" "$S1" "$(ratio "$S1" "$TEACHER_HEUN")" \
    "$PRESET, 2 steps (sigma_mid $SIGMA_MID)" "$S2" "$(ratio "$S2" "$TEACHER_HEUN")"
else
  printf '  %-40s %10s\n' "$PRESET, 1 step" "$S1" "$PRESET, 2 steps (sigma_mid $SIGMA_MID)" "$S2"
fi
printf '  %-40s %10s\n' "data floor (10k training images)" "$FLOOR_FD"
echo "  (one training seed; the README's table is the mean of three: scripts/fmnist_seeds.sh)"
say "done in $((SECONDS - START)) s: grids in $OUT/*.png, training log in $RUN/metrics.jsonl"
