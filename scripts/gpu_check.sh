#!/usr/bin/env bash
# The GPU check, in steps that each fit the lent machine's 600 s per command (docs/gpu.md says which call runs
# which steps). On a machine with an NVIDIA GPU and a Python torch built with CUDA (the lent H100/H200 machines;
# carry .carry from scripts/gpu_carry.sh):
#
#   scripts/gpu_check.sh [STEP...]        (no step: all of them, in this order, as far as the budget goes)
#
#   build    configure build-gpu/ against that torch (CUDA on) and build everything
#   tests    the whole test suite with ONESTEP_TEST_DEVICE=cuda (every tensor test on the GPU, CUDA-only tests on)
#   train    cifar10-ict for GPU_CHECK_STEPS steps on synthetic 32x32 data: finite losses, checkpoints, a sample grid
#   resume   the same run again, killed with SIGKILL after its middle checkpoint and resumed with --resume: its final
#            checkpoint must equal the uninterrupted run's, tensor by tensor (train.deterministic = true in both)
#   edm      cifar10-edm the same way
#   ect      cifar10-ect from that EDM run (--init)
#   sample   1 and 2 steps from the iCT run
#   fid      reference statistics of GPU_CHECK_EVAL_N synthetic images and `onestep eval` (FID) on as many samples of
#            the iCT run, 1 and 2 steps, with a randomly initialised TorchScript Inception-v3
#
# A step whose inputs are missing (a fresh machine) brings the step that makes them along. After every step the
# results (this call's, and earlier calls' on the same machine) are rewritten to $OUT/gpu_check.txt, and the logs
# packed into $OUT/gpu_check_logs.tgz (without $OUT: build-gpu/gpu-check/out/). Each step runs only if the call's
# budget (GPU_CHECK_BUDGET, 560 s: a call's 600 s less the machine's start-up of the command) has room for it, and
# its commands stop when the budget is spent, so a call always ends with its results written.
# Exit status: 0 when every step asked for passed, 1 when one failed or timed out, 2 when one was not started.
# Knobs (environment): GPU_CHECK_STEPS (300), GPU_CHECK_BATCH (32), GPU_CHECK_EVAL_N (5000), GPU_CHECK_SAMPLE_N (64),
# GPU_CHECK_GRID_N (16), GPU_CHECK_JOBS (nproc), GPU_CHECK_TESTS_LIMIT (240 s for the suite), GPU_CHECK_TESTS_REGEX
# (a ctest -R subset), GPU_CHECK_SET (more --set KEY=VALUE of every training, space-separated; the dry run uses a
# narrow network: "model.model_channels=16"), GPU_CHECK_SKIP_BUILD=1 (use GPU_CHECK_BUILD_DIR as built), GPU_CHECK_WORK
# (build-gpu/gpu-check), GPU_CHECK_PYTHON (python3), GPU_CHECK_DEVICE (cuda; cpu for a dry run of the script itself
# on a machine without a GPU, with tiny settings; its Python torch comes from PyPI, see scripts/gpu_lib.sh).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME=gpu_check
TITLE="onestep GPU check"
STEPS="${GPU_CHECK_STEPS:-300}"
BATCH="${GPU_CHECK_BATCH:-32}"
EVAL_N="${GPU_CHECK_EVAL_N:-5000}"
SAMPLE_N="${GPU_CHECK_SAMPLE_N:-64}"   # images of each `onestep sample` call
GRID_N="${GPU_CHECK_GRID_N:-16}"       # images of each run's end-of-training sample grid
JOBS="${GPU_CHECK_JOBS:-$(nproc)}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
BUILD="${GPU_CHECK_BUILD_DIR:-$ROOT/build-gpu}"
WORK="${GPU_CHECK_WORK:-$ROOT/build-gpu/gpu-check}"
PYTHON="${GPU_CHECK_PYTHON:-python3}"; GPU_PYTHON_SET="${GPU_CHECK_PYTHON:-}"
BUDGET="${GPU_CHECK_BUDGET:-560}"
STEP_ORDER="build tests train resume edm ect sample fid"
declare -A step_min=([build]=60 [tests]=60 [train]=45 [resume]=45 [edm]=45 [ect]=45 [sample]=15 [fid]=45)
declare -A step_requires=([tests]=build [train]=build [resume]=train [edm]=build [ect]=edm [sample]=train [fid]=train)
source "$ROOT/scripts/gpu_lib.sh"

ONESTEP="$BUILD/onestep"
RUNS="$WORK/runs"
HALF=$(( STEPS / 2 ))
COMMON=(--steps "$STEPS" --set "data.path=$WORK/cifar" --set "train.batch=$BATCH" --set "train.device=$DEVICE"
        --set "train.checkpoint_every=$HALF" --set train.sample_every=0 --set "train.sample_count=$GRID_N"
        --set "train.log_every=$(( STEPS / 10 > 0 ? STEPS / 10 : 1 ))" --set train.deterministic=true)
for setting in ${GPU_CHECK_SET:-}; do COMMON+=(--set "$setting"); done
latest() { echo "$RUNS/$1/checkpoints/latest"; }
done_build() { [ -x "$ONESTEP" ]; }
done_train() { [ -f "$(latest ict)" ]; }
done_edm() { [ -f "$(latest edm)" ]; }

step_build() {
  if [ -n "${GPU_CHECK_SKIP_BUILD:-}" ]; then
    note "skipped (GPU_CHECK_SKIP_BUILD), using $BUILD"
    [ -x "$ONESTEP" ] || fail "no $ONESTEP"
    return
  fi
  gpu_build "$JOBS"
}

# ctest's lines as they finish, so that a suite stopped by the limit still reports what ran.
step_tests() {
  local LIMIT="${GPU_CHECK_TESTS_LIMIT:-240}" log="$WORK/logs/ctest.log" t passed failed
  t=$(date +%s)
  (cd "$BUILD" && export ONESTEP_TEST_DEVICE="$DEVICE" && bounded ctest.log \
     ctest -j "$(( JOBS > 8 ? 8 : JOBS ))" --output-on-failure --timeout 120 ${GPU_CHECK_TESTS_REGEX:+-R "$GPU_CHECK_TESTS_REGEX"})
  local status=$?
  passed=$(grep -cE 'Test +#[0-9]+: .* Passed' "$log")
  failed=$(grep -E 'Test +#[0-9]+: .*(Failed|Exception|Timeout)' "$log" | sed -E 's/.*Test +#[0-9]+: ([^ ]+).*/\1/')
  local skipped; skipped=$(grep -c 'Skipped' "$log")
  if [ -n "$failed" ]; then
    fail "tests (ONESTEP_TEST_DEVICE=$DEVICE): $passed passed, failed: $(echo $failed)"
  elif [ "$status" = 124 ] || [ "$status" = 137 ]; then
    STEP_STATUS=TIMEOUT; note "tests: stopped after $LIMIT s (GPU_CHECK_TESTS_LIMIT): $passed passed, none failed so far"
  elif [ "$status" != 0 ] || [ "$passed" = 0 ]; then
    fail "tests: ctest exit $status, $passed passed ($(tail -n1 "$log"))"
  else
    note "tests (ONESTEP_TEST_DEVICE=$DEVICE): $(grep -E 'tests passed' "$log" | tail -n1), $skipped skipped, $(($(date +%s) - t)) s"
  fi
}

ensure_cifar() {
  [ -f "$WORK/cifar/test_batch.bin" ] && return 0
  local records=$(( BATCH * 20 > 1000 ? BATCH * 20 : 1000 ))
  bounded inputs.log "$PYTHON" "$ROOT/tools/make_gpu_check_inputs.py" --cifar "$WORK/cifar" --records "$records" \
    || { fail "making the synthetic CIFAR-10 (inputs.log)"; return 1; }
}

# Checks a finished run: exit status, finite losses in metrics.jsonl, checkpoints and the sample grid present.
check_run() {
  local name="$1" status="$2" seconds="$3" run="$RUNS/$1"
  if [ "$status" != 0 ]; then tail -n 20 "$WORK/logs/$name.log"; fail "$name: exit $status (log $name.log)"; return; fi
  local losses checkpoints grids
  losses="$("$PYTHON" - "$run/metrics.jsonl" <<'PY'
import json, math, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
bad = [r["step"] for r in records if r.get("nonfinite_loss") or not math.isfinite(r.get("loss") or float("nan"))]
losses = [r["loss"] for r in records if "loss" in r]
rate = [r["images_per_s"] for r in records if r.get("images_per_s")]
print("bad" if bad or not losses else "ok", f"loss {losses[0]:.4g} -> {losses[-1]:.4g}" if losses else "no losses",
      f"{sorted(rate)[len(rate) // 2]:.0f} img/s" if rate else "", f"non-finite at steps {bad}" if bad else "")
PY
)"
  checkpoints=$(ls "$run/checkpoints" 2>/dev/null | grep -c '^ckpt-')
  grids=$(ls "$run/samples" 2>/dev/null | grep -c 'png$')
  if [[ "$losses" != ok* ]] || [ "$checkpoints" -lt 1 ] || [ "$grids" -lt 1 ]; then
    fail "$name: $losses, $checkpoints checkpoints, $grids sample grids"
  else
    note "$name: $STEPS steps at batch $BATCH in $seconds s, ${losses#ok }, $checkpoints checkpoints, $grids grid"
  fi
}

train() {  # train NAME CONFIG [extra args...]
  local name="$1" config="$2"; shift 2
  local t status
  ensure_cifar || return
  rm -rf "${RUNS:?}/$name"; t=$(date +%s)
  bounded "$name.log" "$ONESTEP" train --config "$config" --run "$RUNS/$name" "${COMMON[@]}" "$@"
  status=$?
  check_run "$name" "$status" "$(($(date +%s) - t))"
}
step_train() { train ict cifar10-ict; }
step_edm() { train edm cifar10-edm; }
step_ect() { train ect cifar10-ect --init "$(latest edm)"; }

# Compares two checkpoints (pointer files): "bitwise ..." when every tensor is identical.
compare_checkpoints() {
  local a b
  a="$(dirname "$1")/$(cat "$1")"; b="$(dirname "$2")/$(cat "$2")"
  if cmp -s "$a" "$b"; then
    echo "bitwise identical files ($(stat -c %s "$b") bytes: weights, EMA, optimizer, random states)"; return
  fi
  "$PYTHON" - "$a" "$b" 2>&1 <<'PY' || echo "differs (files differ, and they could not be read tensor by tensor)"
import sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
if a.keys() != b.keys():
    print("differs: different tensor names:", sorted(set(a) ^ set(b))[:5]); sys.exit(0)
diff = {k: (a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0 for k in a}
worst = max(diff, key=diff.get)
identical = sum(1 for k in a if a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and bool((a[k] == b[k]).all()))
print("bitwise" if identical == len(a) else "differs",
      f"{identical}/{len(a)} tensors identical, largest difference {diff[worst]:.3g} in {worst}")
PY
}

# kill -9 of a second iCT run after its middle checkpoint, --resume, and its end against the uninterrupted run.
step_resume() {
  local run="$RUNS/ict-killed" pid killed_at comparison
  rm -rf "$run"
  "$ONESTEP" train --config cifar10-ict --run "$run" "${COMMON[@]}" > "$WORK/logs/ict-killed.log" 2>&1 &
  pid=$!
  local middle; middle="$(printf 'ckpt-%08d.safetensors' "$HALF")"
  while kill -0 "$pid" 2>/dev/null && ! grep -qs "$middle" "$run/checkpoints/latest" && [ "$(left)" -gt 5 ]; do
    sleep 0.2
  done
  if ! kill -9 "$pid" 2>/dev/null; then
    fail "kill -9: the run ended before its middle checkpoint was seen ($(tail -n1 "$WORK/logs/ict-killed.log"))"; return
  fi
  wait "$pid" 2>/dev/null
  grep -qs "$middle" "$run/checkpoints/latest" || { STEP_STATUS=TIMEOUT; note "TIMEOUT before the middle checkpoint"; return; }
  killed_at="$(ls "$run/checkpoints" | grep '^ckpt-' | tail -n1)"
  if ! bounded ict-resumed.log "$ONESTEP" train --run "$run" --resume --steps "$STEPS"; then
    tail -n 20 "$WORK/logs/ict-resumed.log"; fail "resume after kill -9 (ict-resumed.log)"; return
  fi
  comparison="$(compare_checkpoints "$(latest ict)" "$(latest ict-killed)")"
  if [[ "$comparison" == bitwise* ]]; then
    note "kill -9 after $killed_at, --resume to $STEPS: the final checkpoint equals the uninterrupted run's (${comparison#bitwise })"
  else
    fail "kill -9 after $killed_at, --resume: $comparison"
  fi
}

step_sample() {
  local steps t
  for steps in 1 2; do
    t=$(date +%s)
    if bounded "sample-$steps.log" "$ONESTEP" sample --ckpt "$(latest ict)" --steps "$steps" --n "$SAMPLE_N" \
         --device "$DEVICE" --out "$WORK/sample-$steps.png" && [ -s "$WORK/sample-$steps.png" ]; then
      note "sample $steps step(s): $SAMPLE_N images in $(($(date +%s) - t)) s ($(tail -n1 "$WORK/logs/sample-$steps.log"))"
    else
      tail -n 5 "$WORK/logs/sample-$steps.log"; fail "sample $steps step(s)"
    fi
  done
}

step_fid() {
  local t
  ensure_cifar || return
  if [ ! -s "$WORK/detector.pt" ]; then
    bounded detector.log "$PYTHON" "$ROOT/tools/make_gpu_check_inputs.py" --detector "$WORK/detector.pt" \
      || { tail -n 5 "$WORK/logs/detector.log"; fail "making the TorchScript detector (detector.log)"; return; }
    note "$(tail -n1 "$WORK/logs/detector.log")"
  fi
  t=$(date +%s)
  if bounded stats.log "$ONESTEP" eval stats --data cifar10-ict --set "data.path=$WORK/cifar" --metric fid \
       --limit "$EVAL_N" --detector "$WORK/detector.pt" --device "$DEVICE" --out "$WORK/ref.npz"; then
    note "eval stats of $EVAL_N synthetic images: $(($(date +%s) - t)) s"
  else
    tail -n 5 "$WORK/logs/stats.log"; fail "eval stats (stats.log)"; return
  fi
  t=$(date +%s)
  if bounded eval.log "$ONESTEP" eval --ckpt "$(latest ict)" --steps 1,2 --n "$EVAL_N" --ref "$WORK/ref.npz" \
       --metric fid --detector "$WORK/detector.pt" --device "$DEVICE"; then
    note "eval FID, $EVAL_N samples, 1 and 2 steps: $(($(date +%s) - t)) s; $(grep -iE 'fid' "$WORK/logs/eval.log" | tail -n2 | tr '\n' ' ')"
  else
    tail -n 5 "$WORK/logs/eval.log"; fail "eval FID (eval.log)"
  fi
}

plan_steps "$@"
gpu_steps_init
gpu_python
log "steps: $STEPS_ASKED; budget $BUDGET s; results in $REPORT_DIR/$NAME.txt"
write_report
for step in $STEPS_ASKED; do run_step "$step"; done
cat "$REPORT_DIR/$NAME.txt"
exit "$CALL_STATUS"
