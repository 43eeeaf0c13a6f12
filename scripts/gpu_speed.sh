#!/usr/bin/env bash
# Issue 16 in one device call: the ECT training step of onestep against the reference Python code (locuslab/ect) on
# the same GPU, in one results table ready for bench/RESULTS.md. On a machine with an NVIDIA GPU and a CUDA Python
# torch (the lent H100/H200 machines; carry .carry, filled by ECT_SOURCE=... scripts/gpu_carry.sh), it
#   1. builds onestep_train_bench against that torch (build-gpu/, like scripts/gpu_check.sh),
#   2. times the reference step (tools/bench_ect_reference.py on the carried checkout .carry/ect): DDPM++ CIFAR-10,
#      batch 128, fp32 as shipped, then with its --fp16=True,
#   3. times onestep's cifar10-ect step (ECT objective on the DDPM++ network) in fp32 at batch 128, 256, 512, each
#      speed-up of onestep_train_bench's --modes at batch 128, and the speed-ups together at every batch,
#   4. one-step sampling images/s, a timed FID pass (1-step generation + Inception-v3 + statistics, 50k images) and the
#      bf16 matrix-product peak measured in the same run,
#   5. the overhead of the data-parallel path at world size 1 (issue 14: target under 2%): fp32 steps at the first
#      batch with and without a process group of one (NCCL when this build has it), alternating, GPU_SPEED_DIST_REPEATS
#      (3) pairs; the median ratio,
# and prints one markdown table (also $OUT/gpu_speed.md; raw JSON lines in $OUT/gpu_speed.jsonl; logs in $WORK).
# Exit status: 0 when every part ran. Knobs (environment): GPU_SPEED_DEVICE (cuda; cpu dry-runs the script with tiny
# sizes on a machine without a GPU), GPU_SPEED_SKIP_BUILD=1 with GPU_SPEED_BUILD_DIR (use a finished build),
# GPU_SPEED_JOBS (nproc), GPU_SPEED_PYTHON (python3), GPU_SPEED_ECT (.carry/ect), GPU_SPEED_BATCHES (128,256,512),
# GPU_SPEED_MODES (speed-ups at the first batch: bf16,tf32,cl,bench,bf16+cl+bench), GPU_SPEED_ALL (the speed-ups
# together, also at the other batches: bf16+cl+bench), GPU_SPEED_WARMUP (3) / GPU_SPEED_STEPS (10) per onestep
# configuration, GPU_SPEED_REF_WARMUP (5) / GPU_SPEED_REF_STEPS (20), GPU_SPEED_SAMPLE_BATCH (1024),
# GPU_SPEED_FID_IMAGES (50000), GPU_SPEED_FID_BATCH (1000), GPU_SPEED_TIMEOUT (240 s per part).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEVICE="${GPU_SPEED_DEVICE:-cuda}"
if [ "$DEVICE" = cpu ]; then  # the dry run: every part, tiny sizes
  D_BATCHES=2,4; D_MODES=bench,cl,cl+bench; D_ALL=cl+bench; D_WARMUP=1; D_STEPS=1; D_REF_WARMUP=1; D_REF_STEPS=1
  D_SAMPLE=4; D_FID=8; D_FID_BATCH=4
else
  D_BATCHES=128,256,512; D_MODES=bf16,tf32,cl,bench,bf16+cl+bench; D_ALL=bf16+cl+bench; D_WARMUP=3; D_STEPS=10
  D_REF_WARMUP=5; D_REF_STEPS=20; D_SAMPLE=1024; D_FID=50000; D_FID_BATCH=1000
fi
BATCHES="${GPU_SPEED_BATCHES:-$D_BATCHES}"
MODES="${GPU_SPEED_MODES:-$D_MODES}"
ALL="${GPU_SPEED_ALL:-$D_ALL}"
WARMUP="${GPU_SPEED_WARMUP:-$D_WARMUP}"
STEPS="${GPU_SPEED_STEPS:-$D_STEPS}"
REF_WARMUP="${GPU_SPEED_REF_WARMUP:-$D_REF_WARMUP}"
REF_STEPS="${GPU_SPEED_REF_STEPS:-$D_REF_STEPS}"
SAMPLE_BATCH="${GPU_SPEED_SAMPLE_BATCH:-$D_SAMPLE}"
FID_IMAGES="${GPU_SPEED_FID_IMAGES:-$D_FID}"
FID_BATCH="${GPU_SPEED_FID_BATCH:-$D_FID_BATCH}"
PART_TIMEOUT="${GPU_SPEED_TIMEOUT:-240}"
JOBS="${GPU_SPEED_JOBS:-$(nproc)}"
BUILD="${GPU_SPEED_BUILD_DIR:-$ROOT/build-gpu}"
PYTHON="${GPU_SPEED_PYTHON:-python3}"
ECT="${GPU_SPEED_ECT:-$ROOT/.carry/ect}"
WORK="${GPU_SPEED_WORK:-/tmp/onestep-gpu-speed}"
REPORT_DIR="${OUT:-$WORK}"
FIRST_BATCH="${BATCHES%%,*}"
rm -rf "$WORK"; mkdir -p "$WORK" "$REPORT_DIR"
JSONL="$WORK/gpu_speed.jsonl"
START=$(date +%s)
FAILED=0
NOTES=()
COMMANDS=()
log() { echo "[gpu_speed $(($(date +%s) - START))s] $*"; }
note() { NOTES+=("$*"); log "$*"; }
failure() { NOTES+=("FAIL: $*"); FAILED=1; log "FAIL: $*"; }

# --- the machine --------------------------------------------------------------------------------
MACHINE="$(uname -m), $(nproc) cores"
if command -v nvidia-smi >/dev/null 2>&1; then
  MACHINE="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n1) (name, driver, memory); $MACHINE"
fi
HAVE_TORCH=1
if TORCH_INFO="$("$PYTHON" -c 'import torch;print(torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "available", torch.cuda.is_available())' 2>&1)"; then
  TORCH_PREFIX="$("$PYTHON" -c 'import torch;print(torch.utils.cmake_prefix_path)')"
elif [ "$DEVICE" = cpu ] && [ -n "${GPU_SPEED_SKIP_BUILD:-}" ]; then
  HAVE_TORCH=0
  TORCH_INFO="no Python torch ($(echo "$TORCH_INFO" | tail -n1)): the reference is skipped"
else
  failure "python torch not importable ($(echo "$TORCH_INFO" | tail -n1))"; TORCH_INFO="none"
fi
log "machine: $MACHINE; python torch: $TORCH_INFO"

# --- build --------------------------------------------------------------------------------------
if [ -d "$ROOT/.carry/include" ]; then
  export CPATH="$ROOT/.carry/include${CPATH:+:$CPATH}" LIBRARY_PATH="$ROOT/.carry/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  CARRY_ARGS=(-DCMAKE_PREFIX_PATH="$ROOT/.carry")
else
  CARRY_ARGS=()
fi
BENCH="$BUILD/bench/onestep_train_bench"
t=$(date +%s)
if [ -n "${GPU_SPEED_SKIP_BUILD:-}" ]; then
  note "build: skipped (GPU_SPEED_SKIP_BUILD), using $BUILD"
elif [ "$FAILED" = 0 ]; then
  if ! cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DONESTEP_TORCH_PREFIX="$TORCH_PREFIX" "${CARRY_ARGS[@]}" \
       > "$WORK/cmake.log" 2>&1; then
    tail -n 30 "$WORK/cmake.log"; failure "cmake configure (log above)"
  elif ! cmake --build "$BUILD" -j "$JOBS" --target onestep_train_bench > "$WORK/build.log" 2>&1; then
    grep -E "error|Error" "$WORK/build.log" | head -n 30; failure "build (errors above)"
  else
    note "build: onestep_train_bench in $(($(date +%s) - t)) s with $JOBS jobs"
  fi
fi
[ -x "$BENCH" ] || failure "no $BENCH"

# --- the reference: locuslab/ect's step -----------------------------------------------------------
REF_ARGS=(--ect "$ECT" --device "$DEVICE" --batch "$FIRST_BATCH" --warmup "$REF_WARMUP" --steps "$REF_STEPS")
[ "$DEVICE" = cpu ] && REF_ARGS+=(--model-channels 16)  # the dry run: a narrow DDPM++, same code path
if [ "$HAVE_TORCH" = 0 ]; then
  note "reference: skipped (no Python torch)"
elif [ ! -f "$ECT/training/loss.py" ]; then
  failure "reference: no checkout of locuslab/ect at $ECT (ECT_SOURCE=... scripts/gpu_carry.sh here, carry .carry)"
else
  for precision in fp32 fp16; do
    t=$(date +%s)
    COMMANDS+=("python3 tools/bench_ect_reference.py ${REF_ARGS[*]/#$ROOT\//} --precision $precision")
    if timeout "$PART_TIMEOUT" "$PYTHON" "$ROOT/tools/bench_ect_reference.py" "${REF_ARGS[@]}" --precision "$precision" \
         > "$WORK/ref-$precision.log" 2>&1 && tail -n1 "$WORK/ref-$precision.log" | grep -q '^{'; then
      tail -n1 "$WORK/ref-$precision.log" | "$PYTHON" -c 'import json,sys; r=json.loads(sys.stdin.read()); r["kind"]="reference"; print(json.dumps(r))' >> "$JSONL" 2>/dev/null \
        || tail -n1 "$WORK/ref-$precision.log" | sed 's/^{/{"kind": "reference", /' >> "$JSONL"
      log "reference $precision: $(tail -n1 "$WORK/ref-$precision.log") ($(($(date +%s) - t)) s)"
    else
      tail -n 8 "$WORK/ref-$precision.log"; failure "reference $precision (log above)"
    fi
  done
fi

# --- onestep ------------------------------------------------------------------------------------
MODEL=ddpmpp-cifar10
if [ "$DEVICE" = cpu ]; then  # the dry run: a narrow DDPM++ (same blocks, 16 channels)
  MODEL="$WORK/ddpmpp-narrow.toml"
  printf 'base = "ddpmpp-cifar10"\n[model]\nmodel_channels = 16\n' > "$MODEL"
fi
bench() {  # bench NAME ARGS...
  local name="$1"; shift
  local t; t=$(date +%s)
  COMMANDS+=("${BENCH#"$ROOT"/} --model ${MODEL/#$WORK\//} --objective ect --device $DEVICE $*")
  if timeout "$PART_TIMEOUT" "$BENCH" --model "$MODEL" --objective ect --device "$DEVICE" --json "$JSONL" "$@" \
       > "$WORK/$name.log" 2>&1; then
    log "$name: $(($(date +%s) - t)) s"; sed 's/^/    /' "$WORK/$name.log"
  else
    tail -n 8 "$WORK/$name.log"; failure "onestep $name (log above)"
  fi
}
if [ -x "$BENCH" ]; then
  STEP_ARGS=(--warmup "$WARMUP" --steps "$STEPS")
  bench fp32 --batches "$BATCHES" --modes fp32 "${STEP_ARGS[@]}" --sample-batch 0
  bench speedups --batches "$FIRST_BATCH" --modes "$MODES" "${STEP_ARGS[@]}" --sample-batch 0
  REST="${BATCHES#"$FIRST_BATCH"}"; REST="${REST#,}"
  [ -n "$REST" ] && bench all --batches "$REST" --modes "$ALL" "${STEP_ARGS[@]}" --sample-batch 0
  bench sample-fid --batches "$FIRST_BATCH" --modes fp32 --warmup 0 --steps 1 --sample-batch "$SAMPLE_BATCH" \
    --fid-images "$FID_IMAGES" --fid-batch "$FID_BATCH"
  DIST_MODES="fp32,dist"
  for ((i = 1; i < ${GPU_SPEED_DIST_REPEATS:-3}; i++)); do DIST_MODES="$DIST_MODES,fp32,dist"; done
  bench dist-overhead --batches "$FIRST_BATCH" --modes "$DIST_MODES" "${STEP_ARGS[@]}" --sample-batch 0 \
    --tag dist-overhead
fi

# --- the table ----------------------------------------------------------------------------------
cp "$JSONL" "$REPORT_DIR/gpu_speed.jsonl" 2>/dev/null
{
  echo "### onestep vs locuslab/ect, ECT step on DDPM++ CIFAR-10 ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown), device $DEVICE)"
  echo
  echo "Machine: $MACHINE. Python torch: $TORCH_INFO."
  echo
  python3 - "$JSONL" "$FIRST_BATCH" <<'PY' || echo "(no table: the JSON lines could not be read)"
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()] if sys.argv[1] else []
first_batch = int(sys.argv[2])
header = next((r for r in records if r["kind"] == "header"), None)
step_gflop = header["step_gflop_per_image"] if header else float("nan")
peak = header["matmul_peak_tflops"] if header else float("nan")
refs = {r["precision"]: r for r in records if r["kind"] == "reference"}
base = refs.get("fp32")
print("| implementation | configuration | batch | images/s | ms/step | utilization | peak memory GiB | vs reference fp32 |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
def row(impl, config, batch, ips, ms, mem):
    util = 100 * ips * step_gflop / (peak * 1000) if header else float("nan")
    ratio = f"{ips / base['images_per_s']:.2f}x" if base else "n/a"
    print(f"| {impl} | {config} | {batch} | {ips:.1f} | {ms:.1f} | {util:.1f}% | {mem:.2f} | {ratio} |")
for precision in ("fp32", "fp16"):
    if precision in refs:
        r = refs[precision]
        row("locuslab/ect " + r.get("commit", "")[:7], f"{precision} (cuDNN benchmark, DDP {r.get('ddp')})",
            r["batch"], r["images_per_s"], r["ms_per_step"], r["peak_memory_gib"])
seen = set()
for r in records:
    if r["kind"] == "train" and (r["mode"], r["batch"]) not in seen and r.get("tag") != "dist-overhead":
        seen.add((r["mode"], r["batch"]))
        row("onestep", r["mode"], r["batch"], r["images_per_s"], r["ms_per_step"], r["peak_memory_gib"])
print()
if header:
    print(f"Step cost: {step_gflop:.1f} GFLOP per image (4 forward-equivalents of {header['forward_gflop_per_image']:.1f}"
          f" GFLOP: student forward + backward, teacher forward); utilization = images/s x that / the "
          f"{header['matmul_peak_dtype']} matrix-product peak measured in the same run, {peak:.3g} TFLOP/s.")
for r in records:
    if r["kind"] == "sample":
        print(f"One-step sampling, batch {r['batch']}, fp32: {r['images_per_s']:.1f} images/s.")
    if r["kind"] == "fid":
        print(f"FID pass of {r['images']} images at batch {r['batch']} (1-step generation + Inception-v3 + statistics): "
              f"{r['seconds']:.2f} s ({r['images_per_s']:.1f} images/s; {r['seconds'] * 50000 / r['images']:.1f} s per 50k).")
# Issue 14: the data-parallel path at world size 1, each dist step time against the fp32 one measured just before it.
pairs, last_fp32 = [], None
for r in records:
    if r["kind"] == "train" and r.get("tag") == "dist-overhead":
        if r["mode"] == "fp32":
            last_fp32 = r
        elif r["mode"] == "dist" and last_fp32:
            pairs.append(r["ms_per_step"] / last_fp32["ms_per_step"] - 1)
if pairs:
    pairs.sort()
    median = pairs[len(pairs) // 2]
    backend = next((r.get("backend", "?") for r in records if r.get("mode") == "dist"), "?")
    print(f"Data-parallel path at world size 1 (a {backend} process group of one: gradient hooks, buckets, "
          f"all-reduces), fp32 at batch {first_batch}: {100 * median:+.2f}% step time (median of {len(pairs)} "
          f"alternating pairs: {', '.join(f'{100 * p:+.2f}%' for p in pairs)}); target under 2%.")
fp32 = [r for r in records if r["kind"] == "train" and r["mode"] == "fp32" and r["batch"] == first_batch]
best = max((r for r in records if r["kind"] == "train" and r["batch"] == first_batch),
           key=lambda r: r["images_per_s"], default=None)
if base and best:
    print(f"Headline at batch {first_batch}: onestep {best['mode']} {best['images_per_s']:.1f} images/s = "
          f"{best['images_per_s'] / base['images_per_s']:.2f}x the reference fp32"
          + (f" ({best['images_per_s'] / refs['fp16']['images_per_s']:.2f}x its fp16)" if "fp16" in refs else "")
          + (f"; onestep fp32 alone {fp32[0]['images_per_s'] / base['images_per_s']:.2f}x." if fp32 else "."))
PY
  echo
  echo "Commands (from the repository root; the reference checkout carried as .carry/ect):"
  for c in "${COMMANDS[@]}"; do echo "    $c"; done
  [ ${#NOTES[@]} -gt 0 ] && printf -- '- %s\n' "${NOTES[@]}"
  echo "total wall time: $(($(date +%s) - START)) s; verdict: $([ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
} | tee "$REPORT_DIR/gpu_speed.md"
exit "$FAILED"
