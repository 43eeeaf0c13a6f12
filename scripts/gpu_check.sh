#!/usr/bin/env bash
# The GPU check: one command, on a machine with an NVIDIA GPU and a Python torch built with CUDA (the lent H100/H200
# machines; see docs/gpu.md for the carried header-only libraries). It
#   1. builds onestep against that torch (CUDA on),
#   2. runs the whole test suite with ONESTEP_TEST_DEVICE=cuda (every tensor test on the GPU, CUDA-only tests on),
#   3. trains cifar10-edm, then cifar10-ect from it (--init), then cifar10-ict, each GPU_CHECK_STEPS steps on
#      synthetic 32x32 data (finite losses, checkpoints written, sample grids drawn on the GPU),
#   4. kills a second ECT run with SIGKILL after its middle checkpoint, resumes it with --resume and compares its final
#      checkpoint with the uninterrupted run's, tensor by tensor (train.deterministic = true in both),
#   5. samples 1 and 2 steps and runs `onestep eval` (FID) on GPU_CHECK_EVAL_N samples with a randomly initialised
#      TorchScript Inception-v3,
# and prints one results block (also written to $OUT/gpu_check.txt when $OUT is set, else build-gpu/gpu_check.txt).
# Exit status: 0 when every check passed. Knobs (environment): GPU_CHECK_STEPS (300), GPU_CHECK_BATCH (32),
# GPU_CHECK_EVAL_N (5000), GPU_CHECK_SAMPLE_N (64), GPU_CHECK_GRID_N (16), GPU_CHECK_JOBS (nproc), GPU_CHECK_SKIP_TESTS=1, GPU_CHECK_SKIP_BUILD=1 (use GPU_CHECK_BUILD_DIR as built), GPU_CHECK_DEVICE (cuda; cpu for a dry run
# of the script itself on a machine without a GPU, with tiny settings).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STEPS="${GPU_CHECK_STEPS:-300}"
BATCH="${GPU_CHECK_BATCH:-32}"
EVAL_N="${GPU_CHECK_EVAL_N:-5000}"
SAMPLE_N="${GPU_CHECK_SAMPLE_N:-64}"   # images of each `onestep sample` call
GRID_N="${GPU_CHECK_GRID_N:-16}"       # images of each run's end-of-training sample grid
JOBS="${GPU_CHECK_JOBS:-$(nproc)}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
BUILD="${GPU_CHECK_BUILD_DIR:-$ROOT/build-gpu}"
WORK="${GPU_CHECK_WORK:-/tmp/onestep-gpu-check}"
PYTHON="${GPU_CHECK_PYTHON:-python3}"
REPORT="${OUT:-$BUILD}/gpu_check.txt"
START=$(date +%s)
RESULTS=()
FAILED=0
log() { echo "[gpu_check $(($(date +%s) - START))s] $*"; }
result() { RESULTS+=("$*"); log "$*"; }
failure() { RESULTS+=("FAIL: $*"); FAILED=1; log "FAIL: $*"; }
finish() {
  mkdir -p "$(dirname "$REPORT")"
  {
    echo "=== onestep GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown) ==="
    printf '%s\n' "${RESULTS[@]}"
    echo "total wall time: $(($(date +%s) - START)) s; verdict: $([ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
  } | tee "$REPORT"
  exit "$FAILED"
}
seconds_since() { echo $(($(date +%s) - $1)); }

# --- the machine --------------------------------------------------------------------------------
if command -v nvidia-smi >/dev/null 2>&1; then
  result "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n1)"
fi
HAVE_TORCH=1
if TORCH_INFO="$("$PYTHON" -c 'import torch;print(torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "available", torch.cuda.is_available())' 2>&1)"; then
  result "torch: $TORCH_INFO"
  TORCH_PREFIX="$("$PYTHON" -c 'import torch;print(torch.utils.cmake_prefix_path)')"
elif [ "$DEVICE" = cpu ] && [ -n "${GPU_CHECK_SKIP_BUILD:-}" ]; then
  HAVE_TORCH=0  # the CPU dry run of this script: no Python torch needed, the FID step is skipped
  result "torch: no Python torch ($(echo "$TORCH_INFO" | tail -n1)); CPU dry run without the FID step"
else
  failure "python torch not importable ($(echo "$TORCH_INFO" | tail -n1))"; finish
fi

# --- build --------------------------------------------------------------------------------------
# Header-only libraries carried in .carry/ (docs/gpu.md): no package registry on the GPU machine.
if [ -d "$ROOT/.carry/include" ]; then
  export CPATH="$ROOT/.carry/include${CPATH:+:$CPATH}" LIBRARY_PATH="$ROOT/.carry/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  CARRY_ARGS=(-DCMAKE_PREFIX_PATH="$ROOT/.carry")
else
  CARRY_ARGS=()
fi
t=$(date +%s)
if [ -n "${GPU_CHECK_SKIP_BUILD:-}" ]; then
  result "build: skipped (GPU_CHECK_SKIP_BUILD), using $BUILD"
elif ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DONESTEP_TORCH_PREFIX="$TORCH_PREFIX" "${CARRY_ARGS[@]}" \
     > "$WORK.cmake.log" 2>&1; then
  tail -n 30 "$WORK.cmake.log"; failure "cmake configure (log above)"; finish
else
  grep -E "onestep: LibTorch" "$WORK.cmake.log" | sed 's/^-- //' | while read -r line; do log "$line"; done
  if ! cmake --build "$BUILD" -j "$JOBS" > "$WORK.build.log" 2>&1; then
    grep -E "error|Error" "$WORK.build.log" | head -n 30; failure "build (errors above)"; finish
  fi
  result "build: $(seconds_since "$t") s with $JOBS jobs ($(grep -c 'Building CXX' "$WORK.build.log") objects compiled)"
fi
ONESTEP="$BUILD/onestep"

# --- the test suite on the GPU ------------------------------------------------------------------
if [ -z "${GPU_CHECK_SKIP_TESTS:-}" ]; then
  t=$(date +%s)
  (cd "$BUILD" && ONESTEP_TEST_DEVICE="$DEVICE" ctest -j "$(( JOBS > 8 ? 8 : JOBS ))" --output-on-failure --timeout 300) \
    > "$WORK.ctest.log" 2>&1
  summary="$(grep -E 'tests passed, [0-9]+ tests failed out of' "$WORK.ctest.log" | tail -n1)"
  skipped="$(grep -c 'Skipped' "$WORK.ctest.log" || true)"
  if grep -qE '100% tests passed' "$WORK.ctest.log"; then
    result "tests (ONESTEP_TEST_DEVICE=$DEVICE): $summary, $skipped skipped, $(seconds_since "$t") s"
  else
    grep -E '^\s+[0-9]+ - |Failure|error' "$WORK.ctest.log" | head -n 40
    failure "tests (ONESTEP_TEST_DEVICE=$DEVICE): ${summary:-no summary} (failures above)"
  fi
fi

# --- training on synthetic CIFAR-10 -------------------------------------------------------------
rm -rf "$WORK"; mkdir -p "$WORK"
RECORDS=$(( BATCH * 20 > 1000 ? BATCH * 20 : 1000 ))
DETECTOR_ARGS=(); [ "$HAVE_TORCH" = 1 ] && DETECTOR_ARGS=(--detector "$WORK/detector.pt")
"$PYTHON" "$ROOT/tools/make_gpu_check_inputs.py" --cifar "$WORK/cifar" --records "$RECORDS" "${DETECTOR_ARGS[@]}" \
  > "$WORK/inputs.log" 2>&1 || { cat "$WORK/inputs.log"; failure "making the synthetic inputs"; finish; }
while read -r line; do result "inputs: $line"; done < "$WORK/inputs.log"
HALF=$(( STEPS / 2 ))
COMMON=(--steps "$STEPS" --set "data.path=$WORK/cifar" --set "train.batch=$BATCH" --set "train.device=$DEVICE"
        --set "train.checkpoint_every=$HALF" --set train.sample_every=0 --set "train.sample_count=$GRID_N"
        --set "train.log_every=$(( STEPS / 10 > 0 ? STEPS / 10 : 1 ))" --set train.deterministic=true)

# Checks a finished run: exit status, finite losses in metrics.jsonl, checkpoints and the sample grid present.
check_run() {
  local name="$1" status="$2" seconds="$3" run="$WORK/runs/$1"
  if [ "$status" != 0 ]; then tail -n 20 "$WORK/$name.log"; failure "$name: exit $status (log above)"; return; fi
  local losses
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
  local checkpoints grids
  checkpoints=$(ls "$run/checkpoints" 2>/dev/null | grep -c '^ckpt-')
  grids=$(ls "$run/samples" 2>/dev/null | grep -c 'png$')
  if [[ "$losses" != ok* ]] || [ "$checkpoints" -lt 1 ] || [ "$grids" -lt 1 ]; then
    failure "$name: $losses, $checkpoints checkpoints, $grids sample grids"
  else
    result "$name: $STEPS steps at batch $BATCH in $seconds s, ${losses#ok }, $checkpoints checkpoints, $grids grid"
  fi
}

train() {  # train NAME CONFIG [extra args...]
  local name="$1" config="$2"; shift 2
  local t status
  t=$(date +%s)
  "$ONESTEP" train --config "$config" --run "$WORK/runs/$name" "${COMMON[@]}" "$@" > "$WORK/$name.log" 2>&1
  status=$?
  check_run "$name" "$status" "$(seconds_since "$t")"
}

train edm cifar10-edm
EDM_MODEL="$WORK/runs/edm/checkpoints/latest"
train ect cifar10-ect --init "$EDM_MODEL"
train ict cifar10-ict

# --- kill -9 and --resume -----------------------------------------------------------------------
t=$(date +%s)
"$ONESTEP" train --config cifar10-ect --run "$WORK/runs/ect-killed" "${COMMON[@]}" --init "$EDM_MODEL" \
  > "$WORK/ect-killed.log" 2>&1 &
pid=$!
middle="$WORK/runs/ect-killed/checkpoints/$(printf 'ckpt-%08d.safetensors' "$HALF")"
while kill -0 "$pid" 2>/dev/null && ! grep -qs "$(basename "$middle")" "$WORK/runs/ect-killed/checkpoints/latest"; do
  sleep 0.2
done
if kill -9 "$pid" 2>/dev/null; then
  wait "$pid" 2>/dev/null
  killed_at="$(ls "$WORK/runs/ect-killed/checkpoints" | grep '^ckpt-' | tail -n1)"
  "$ONESTEP" train --run "$WORK/runs/ect-killed" --resume --steps "$STEPS" \
    > "$WORK/ect-resumed.log" 2>&1
  status=$?
  if [ "$status" != 0 ]; then
    tail -n 20 "$WORK/ect-resumed.log"; failure "resume after kill -9: exit $status"
  else
    straight_file="$WORK/runs/ect/checkpoints/$(cat "$WORK/runs/ect/checkpoints/latest")"
    resumed_file="$WORK/runs/ect-killed/checkpoints/$(cat "$WORK/runs/ect-killed/checkpoints/latest")"
    if cmp -s "$straight_file" "$resumed_file"; then
      comparison="bitwise identical files ($(stat -c %s "$resumed_file") bytes: weights, EMA, optimizer, random states)"
    else
      comparison="$("$PYTHON" - "$WORK/runs/ect/checkpoints/latest" "$WORK/runs/ect-killed/checkpoints/latest" 2>&1 <<'PY'
import os, sys
from safetensors.torch import load_file
def load(pointer):
    return load_file(os.path.join(os.path.dirname(pointer), open(pointer).read().strip()))
a, b = load(sys.argv[1]), load(sys.argv[2])
if a.keys() != b.keys():
    print("different tensor names:", sorted(set(a) ^ set(b))[:5]); sys.exit(0)
diff = {k: (a[k].double() - b[k].double()).abs().max().item() if a[k].numel() else 0.0 for k in a}
worst = max(diff, key=diff.get)
identical = sum(1 for k in a if a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and bool((a[k] == b[k]).all()))
print("bitwise" if identical == len(a) else "differs",
      f"{identical}/{len(a)} tensors identical, largest difference {diff[worst]:.3g} in {worst}")
PY
)" || comparison="differs (files differ; $(echo "$comparison" | tail -n1))"
    fi
    if [[ "$comparison" == bitwise* ]]; then
      result "kill -9 after $killed_at, --resume to $STEPS: final checkpoint matches the uninterrupted run (${comparison#bitwise }), $(seconds_since "$t") s"
    else
      failure "kill -9 after $killed_at, --resume: $comparison"
    fi
  fi
else
  failure "kill -9: the run ended before its middle checkpoint was seen ($(tail -n1 "$WORK/ect-killed.log"))"
fi

# --- sampling and evaluation --------------------------------------------------------------------
ECT_MODEL="$WORK/runs/ect/checkpoints/latest"
for steps in 1 2; do
  t=$(date +%s)
  if "$ONESTEP" sample --ckpt "$ECT_MODEL" --steps "$steps" --n "$SAMPLE_N" --device "$DEVICE" --out "$WORK/sample-$steps.png" \
       > "$WORK/sample-$steps.log" 2>&1 && [ -s "$WORK/sample-$steps.png" ]; then
    result "sample $steps step(s): $SAMPLE_N images in $(seconds_since "$t") s ($(tail -n1 "$WORK/sample-$steps.log"))"
  else
    tail -n 5 "$WORK/sample-$steps.log"; failure "sample $steps step(s)"
  fi
done
if [ "$HAVE_TORCH" = 0 ]; then
  result "eval: skipped (no Python torch for the random detector)"
  finish
fi
t=$(date +%s)
if "$ONESTEP" eval stats --data cifar10-ect --set "data.path=$WORK/cifar" --metric fid --detector "$WORK/detector.pt" \
     --device "$DEVICE" --out "$WORK/ref.npz" > "$WORK/stats.log" 2>&1; then
  result "eval stats of the synthetic data: $(seconds_since "$t") s"
else
  tail -n 5 "$WORK/stats.log"; failure "eval stats"
fi
t=$(date +%s)
if "$ONESTEP" eval --ckpt "$ECT_MODEL" --steps 1,2 --n "$EVAL_N" --ref "$WORK/ref.npz" --metric fid \
     --detector "$WORK/detector.pt" --device "$DEVICE" > "$WORK/eval.log" 2>&1; then
  result "eval FID, $EVAL_N samples, 1 and 2 steps: $(seconds_since "$t") s; $(grep -iE 'fid' "$WORK/eval.log" | tail -n2 | tr '\n' ' ')"
else
  tail -n 5 "$WORK/eval.log"; failure "eval FID"
fi
finish
