#!/usr/bin/env bash
# Issue 16 on the lent GPU machine, in steps that each fit its 600 s per command (docs/gpu.md): the ECT training
# step of onestep against the reference Python code (locuslab/ect) on the same GPU, in one results table ready for
# bench/RESULTS.md. On a machine with an NVIDIA GPU and a CUDA Python torch (the lent H100/H200 machines; carry
# .carry, filled by ECT_SOURCE=... scripts/gpu_carry.sh):
#
#   scripts/gpu_speed.sh [STEP...]        (no step: all of them, in this order, as far as the budget goes)
#
#   build       build onestep_train_bench against that torch (build-gpu/, shared with scripts/gpu_check.sh)
#   reference   the reference step (tools/bench_ect_reference.py on the carried checkout .carry/ect): DDPM++
#               CIFAR-10 at the first batch, fp32 as shipped, then with its --fp16=True
#   fp32        onestep's cifar10-ect step (ECT objective on the DDPM++ network) in fp32 at every batch (128,256,512)
#   speedups    each speed-up of onestep_train_bench's --modes at the first batch
#   sample-fid  one-step sampling images/s and a timed FID pass (1-step generation + Inception-v3 + statistics)
#   dist        the data-parallel path's overhead at world size 1 (issue 14: target under 2%): fp32 steps at the first
#               batch with and without a process group of one (NCCL when this build has it), GPU_SPEED_DIST_REPEATS
#               (3) alternating pairs; the median ratio
#   all         the speed-ups together at the other batches
#
# After every step the table is rewritten to $OUT/gpu_speed.md (raw JSON lines in $OUT/gpu_speed.jsonl, the step
# results in $OUT/gpu_speed.txt, the logs packed in $OUT/gpu_speed_logs.tgz; without $OUT: build-gpu/gpu-speed/out/).
# Each step runs only if the call's budget (GPU_SPEED_BUDGET, 560 s) has room for it, and each timed part stops at
# GPU_SPEED_TIMEOUT (240 s) or when the budget is spent. Exit status: 0 when every step asked for passed, 1 when one
# failed or timed out, 2 when one was not started.
# Knobs (environment): GPU_SPEED_DEVICE (cuda; cpu dry-runs the script with tiny sizes on a machine without a GPU,
# its Python torch from PyPI, see scripts/gpu_lib.sh), GPU_SPEED_SKIP_BUILD=1 with GPU_SPEED_BUILD_DIR (use a
# finished build), GPU_SPEED_JOBS (nproc), GPU_SPEED_PYTHON (python3), GPU_SPEED_ECT (.carry/ect),
# GPU_SPEED_BATCHES (128,256,512), GPU_SPEED_MODES (speed-ups at the first batch: bf16,tf32,cl,bench,bf16+cl+bench),
# GPU_SPEED_ALL (the speed-ups together, also at the other batches: bf16+cl+bench), GPU_SPEED_WARMUP (3) /
# GPU_SPEED_STEPS (10) per onestep configuration, GPU_SPEED_REF_WARMUP (5) / GPU_SPEED_REF_STEPS (20),
# GPU_SPEED_SAMPLE_BATCH (1024), GPU_SPEED_FID_IMAGES (50000), GPU_SPEED_FID_BATCH (1000), GPU_SPEED_WORK
# (build-gpu/gpu-speed).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME=gpu_speed
TITLE="onestep vs locuslab/ect, ECT step on DDPM++ CIFAR-10"
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
PYTHON="${GPU_SPEED_PYTHON:-python3}"; GPU_PYTHON_SET="${GPU_SPEED_PYTHON:-}"
ECT="${GPU_SPEED_ECT:-$ROOT/.carry/ect}"
WORK="${GPU_SPEED_WORK:-$ROOT/build-gpu/gpu-speed}"
BUDGET="${GPU_SPEED_BUDGET:-560}"
FIRST_BATCH="${BATCHES%%,*}"
STEP_ORDER="build reference fp32 speedups sample-fid dist all"
declare -A step_min=([build]=60 [reference]=30 [fp32]=30 [speedups]=30 [sample-fid]=30 [dist]=30 [all]=30)
declare -A step_requires=([fp32]=build [speedups]=build [sample-fid]=build [dist]=build [all]=build)
source "$ROOT/scripts/gpu_lib.sh"

BENCH="$BUILD/bench/onestep_train_bench"
JSONL="$WORK/gpu_speed.jsonl"
COMMANDS=()
done_build() { [ -x "$BENCH" ]; }

step_build() {
  if [ -n "${GPU_SPEED_SKIP_BUILD:-}" ]; then
    note "skipped (GPU_SPEED_SKIP_BUILD), using $BUILD"
  else
    gpu_build "$JOBS" onestep_train_bench
  fi
  [ -x "$BENCH" ] || fail "no $BENCH"
}

# The reference: locuslab/ect's step, fp32 then fp16.
step_reference() {
  local args=(--ect "$ECT" --device "$DEVICE" --batch "$FIRST_BATCH" --warmup "$REF_WARMUP" --steps "$REF_STEPS")
  [ "$DEVICE" = cpu ] && args+=(--model-channels 16)  # the dry run: a narrow DDPM++, same code path
  if [ ! -f "$ECT/training/loss.py" ]; then
    fail "no checkout of locuslab/ect at $ECT (ECT_SOURCE=... scripts/gpu_carry.sh here, carry .carry)"; return
  fi
  local precision t LIMIT="$PART_TIMEOUT"
  for precision in fp32 fp16; do
    t=$(date +%s)
    COMMANDS+=("python3 tools/bench_ect_reference.py ${args[*]/#$ROOT\//} --precision $precision")
    if bounded "ref-$precision.log" "$PYTHON" "$ROOT/tools/bench_ect_reference.py" "${args[@]}" --precision "$precision" \
         && tail -n1 "$WORK/logs/ref-$precision.log" | grep -q '^{'; then
      tail -n1 "$WORK/logs/ref-$precision.log" | "$PYTHON" -c 'import json,sys; r=json.loads(sys.stdin.read()); r["kind"]="reference"; print(json.dumps(r))' >> "$JSONL"
      note "reference $precision: $(tail -n1 "$WORK/logs/ref-$precision.log" | cut -c1-200) ($(($(date +%s) - t)) s)"
    else
      tail -n 8 "$WORK/logs/ref-$precision.log"; fail "reference $precision (ref-$precision.log)"
    fi
  done
}

# onestep: onestep_train_bench on the DDPM++ (the dry run: a narrow DDPM++, same blocks, 16 channels).
MODEL=ddpmpp-cifar10
if [ "$DEVICE" = cpu ]; then
  mkdir -p "$WORK"
  MODEL="$WORK/ddpmpp-narrow.toml"
  printf 'base = "ddpmpp-cifar10"\n[model]\nmodel_channels = 16\n' > "$MODEL"
fi
bench() {  # bench NAME ARGS...
  local name="$1" t LIMIT="$PART_TIMEOUT"; shift
  t=$(date +%s)
  COMMANDS+=("${BENCH#"$ROOT"/} --model ${MODEL/#$WORK\//} --objective ect --device $DEVICE $*")
  if bounded "$name.log" "$BENCH" --model "$MODEL" --objective ect --device "$DEVICE" --json "$JSONL" "$@"; then
    note "$name: $(($(date +%s) - t)) s"; sed 's/^/    /' "$WORK/logs/$name.log"
  else
    tail -n 8 "$WORK/logs/$name.log"; fail "onestep $name ($name.log)"
  fi
}
STEP_ARGS=(--warmup "$WARMUP" --steps "$STEPS")
step_fp32() { bench fp32 --batches "$BATCHES" --modes fp32 "${STEP_ARGS[@]}" --sample-batch 0; }
step_speedups() { bench speedups --batches "$FIRST_BATCH" --modes "$MODES" "${STEP_ARGS[@]}" --sample-batch 0; }
step_all() {
  local rest="${BATCHES#"$FIRST_BATCH"}"; rest="${rest#,}"
  if [ -z "$rest" ]; then note "all: no batch beyond the first"; return; fi
  bench all --batches "$rest" --modes "$ALL" "${STEP_ARGS[@]}" --sample-batch 0
}
step_sample_fid() {
  bench sample-fid --batches "$FIRST_BATCH" --modes fp32 --warmup 0 --steps 1 --sample-batch "$SAMPLE_BATCH" \
    --fid-images "$FID_IMAGES" --fid-batch "$FID_BATCH" --tag sample-fid  # its one untimed step is no row
}
step_dist() {
  local modes="fp32,dist" i
  for ((i = 1; i < ${GPU_SPEED_DIST_REPEATS:-3}; i++)); do modes="$modes,fp32,dist"; done
  bench dist-overhead --batches "$FIRST_BATCH" --modes "$modes" "${STEP_ARGS[@]}" --sample-batch 0 \
    --tag "dist-overhead-$START"
}

# The table, rewritten after every step (REPORT_HOOK of scripts/gpu_lib.sh).
speed_table() {
  [ -f "$JSONL" ] && cp "$JSONL" "$REPORT_DIR/gpu_speed.jsonl"
  {
    echo "### $TITLE ($(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT, device $DEVICE)"
    echo
    echo "Machine: ${MACHINE_NOTES[*]}."
    echo
    [ -s "$JSONL" ] && python3 - "$JSONL" "$FIRST_BATCH" <<'PY' || echo "(no table yet: no measurements, or the JSON lines could not be read)"
import json, sys
records = [json.loads(l) for l in open(sys.argv[1]) if l.strip()] if sys.argv[1] else []
first_batch = int(sys.argv[2])
# Later records replace earlier ones of the same configuration (a step run again, in this or an earlier call).
header = next((r for r in reversed(records) if r["kind"] == "header"), None)
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
rows = {}
for r in records:
    if r["kind"] == "train" and not r.get("tag"):
        rows[(r["mode"], r["batch"])] = r
for r in rows.values():
    row("onestep", r["mode"], r["batch"], r["images_per_s"], r["ms_per_step"], r["peak_memory_gib"])
print()
if header:
    print(f"Step cost: {step_gflop:.1f} GFLOP per image (4 forward-equivalents of {header['forward_gflop_per_image']:.1f}"
          f" GFLOP: student forward + backward, teacher forward); utilization = images/s x that / the "
          f"{header['matmul_peak_dtype']} matrix-product peak measured in the same run, {peak:.3g} TFLOP/s.")
for r in [r for r in records if r["kind"] in ("sample", "fid")][-2:]:
    if r["kind"] == "sample":
        print(f"One-step sampling, batch {r['batch']}, fp32: {r['images_per_s']:.1f} images/s.")
    if r["kind"] == "fid":
        print(f"FID pass of {r['images']} images at batch {r['batch']} (1-step generation + Inception-v3 + statistics): "
              f"{r['seconds']:.2f} s ({r['images_per_s']:.1f} images/s; {r['seconds'] * 50000 / r['images']:.1f} s per 50k).")
# Issue 14: the data-parallel path at world size 1, each dist step time against the fp32 one measured just before it.
pairs, last_fp32 = [], None
dist_tag = next((r["tag"] for r in reversed(records) if r.get("tag", "").startswith("dist-overhead")), None)
for r in records:
    if r["kind"] == "train" and dist_tag and r.get("tag") == dist_tag:
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
fp32 = [r for r in rows.values() if r["mode"] == "fp32" and r["batch"] == first_batch]
best = max((r for r in rows.values() if r["batch"] == first_batch),
           key=lambda r: r["images_per_s"], default=None)
if base and best:
    print(f"Headline at batch {first_batch}: onestep {best['mode']} {best['images_per_s']:.1f} images/s = "
          f"{best['images_per_s'] / base['images_per_s']:.2f}x the reference fp32"
          + (f" ({best['images_per_s'] / refs['fp16']['images_per_s']:.2f}x its fp16)" if "fp16" in refs else "")
          + (f"; onestep fp32 alone {fp32[0]['images_per_s'] / base['images_per_s']:.2f}x." if fp32 else "."))
PY
    echo
    echo "Commands of this call (from the repository root; the reference checkout carried as .carry/ect):"
    for c in "${COMMANDS[@]}"; do echo "    $c"; done
    echo
    echo "Steps:"
    sed 's/^/    /' "$REPORT_DIR/$NAME.txt"
  } > "$REPORT_DIR/.gpu_speed.md" && mv "$REPORT_DIR/.gpu_speed.md" "$REPORT_DIR/gpu_speed.md"
}
REPORT_HOOK=speed_table

plan_steps "$@"
gpu_steps_init
gpu_python
mkdir -p "$WORK"; touch "$JSONL"
log "machine: ${MACHINE_NOTES[*]}"
log "steps: $STEPS_ASKED; budget $BUDGET s; table in $REPORT_DIR/gpu_speed.md"
write_report
for step in $STEPS_ASKED; do run_step "$step"; done
cat "$REPORT_DIR/gpu_speed.md"
exit "$CALL_STATUS"
