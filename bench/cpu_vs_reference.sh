#!/usr/bin/env bash
# onestep against the reference loops on the same CPU cores, alternating A B A B (issue 31): prints one table.
#
#   bench/cpu_vs_reference.sh                      (about 4 minutes on 2 idle cores at the defaults)
#
# Rows (the Python side is tools/bench_cpu_reference.py, which says what each loop is):
#   ect    the demo's ECT step (configs/fmnist-ect-cpu.toml, 0.31M-parameter Fashion-MNIST SongUNet, batch 32, RAdam,
#          EMA 0.9999, dropout BENCH_DROPOUT; the paper's single-sample target, as ECMLoss computes it, not the preset's
#          posterior bank) against locuslab/ect's ECMLoss + RAdam + EMA loop on the same network
#   mlp    the 2-D MLP step of configs/points-ect.toml against a plain PyTorch loop of the same objective
#   sample 1-step sampling of the demo network (onestep sample --steps 1) against the reference's generator_fn
# Each row runs the reference and onestep BENCH_PAIRS times in turn (A B A B ...). Two figures per run: the
# in-process rate after the warm-up (onestep: between its first and last log lines of metrics.jsonl; the reference:
# its own timer after its 5 or 10 warm-up steps, both running the same number of steps in all; sampling: images over
# the whole process, both sides), and the whole process's wall time (start-up, imports and data loading included). The table gives medians and the median of the pairwise ratios.
#
# Needs (the environment names them):
#   ONESTEP_REF_PYTHON  a Python with torch (2.11, as onestep's LibTorch; the CPU wheel is enough):
#                         python3 -m venv ~/.cache/onestep/ref-venv
#                         ~/.cache/onestep/ref-venv/bin/pip install torch==2.11.0 numpy \
#                             --index-url https://download.pytorch.org/whl/cpu
#   ONESTEP_ECT_CHECKOUT a checkout of https://github.com/locuslab/ect (git clone; its code is imported, not copied)
#   ONESTEP_BIN         the onestep binary (default build/onestep), built (scripts/setup.sh)
# Optional: BENCH_PAIRS (3), BENCH_THREADS (2: both sides' intra-op threads), BENCH_ECT_STEPS (100),
# BENCH_MLP_STEPS (400), BENCH_SAMPLES (2000), BENCH_DROPOUT (0.1, the issue's measurement; the preset has 0),
# BENCH_ROWS ("ect mlp sample"), BENCH_OUT (a directory for the raw runs; default a temporary one, removed).
set -euo pipefail

cd "$(dirname "$0")/.."
PY=${ONESTEP_REF_PYTHON:-}
ECT=${ONESTEP_ECT_CHECKOUT:-}
BIN=${ONESTEP_BIN:-build/onestep}
PAIRS=${BENCH_PAIRS:-3}
THREADS=${BENCH_THREADS:-2}
ECT_STEPS=${BENCH_ECT_STEPS:-100}
MLP_STEPS=${BENCH_MLP_STEPS:-400}
SAMPLES=${BENCH_SAMPLES:-2000}
DROPOUT=${BENCH_DROPOUT:-0.1}
ROWS=${BENCH_ROWS:-ect mlp sample}

die() { echo "cpu_vs_reference: error: $*" >&2; exit 1; }
[[ -n "$PY" ]] || die "set ONESTEP_REF_PYTHON to a Python with torch 2.11 (see the top of this script)"
"$PY" -c "import torch" 2>/dev/null || die "ONESTEP_REF_PYTHON=$PY cannot import torch"
[[ -n "$ECT" && -f "$ECT/training/loss.py" ]] ||
  die "set ONESTEP_ECT_CHECKOUT to a checkout of https://github.com/locuslab/ect (no training/loss.py in '$ECT')"
[[ -x "$BIN" ]] || die "no onestep binary at $BIN (build with scripts/setup.sh or set ONESTEP_BIN)"
[[ "$PAIRS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_PAIRS must be a positive integer, got '$PAIRS'"
((ECT_STEPS >= 10 && MLP_STEPS >= 20 && SAMPLES >= 500)) ||
  die "BENCH_ECT_STEPS must be >= 10, BENCH_MLP_STEPS >= 20, BENCH_SAMPLES >= 500"
OUT=${BENCH_OUT:-}
if [[ -z "$OUT" ]]; then
  OUT=$(mktemp -d)
  trap 'rm -rf "$OUT"' EXIT
fi
mkdir -p "$OUT"
export OMP_NUM_THREADS=$THREADS
REF="$PY tools/bench_cpu_reference.py"
LOG=$((ECT_STEPS / 4 > 0 ? ECT_STEPS / 4 : 1))
MLP_LOG=$((MLP_STEPS / 4 > 0 ? MLP_STEPS / 4 : 1))

# run NAME KIND COMMAND...: runs it, appends "name kind wall_s rate" to $OUT/runs.txt. KIND says how to read the rate.
run() {
  local name=$1 kind=$2
  shift 2
  local start end rate
  start=$(date +%s.%N)
  "$@" >"$OUT/last.out" 2>"$OUT/last.err" || { cat "$OUT/last.err" >&2; die "$name failed: $*"; }
  end=$(date +%s.%N)
  rate=$(python3 - "$kind" "$OUT" "$start" "$end" <<'EOF'
import json, sys
kind, out, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
if kind == "ref_steps":
    line = [l for l in open(f"{out}/last.out") if l.startswith("{")][-1]
    print(json.loads(line)["steps_per_s"])
elif kind == "onestep_train":  # steps between the first and the last log line over their wall-time difference
    rows = [json.loads(l) for l in open(f"{out}/run/metrics.jsonl")]
    print((rows[-1]["step"] - rows[0]["step"]) / (rows[-1]["wall_s"] - rows[0]["wall_s"]))
else:  # process_images:N: N images over the whole process (start-up and loading the network included)
    print(float(kind.split(":")[1]) / (end - start))
EOF
)
  echo "$name $(python3 -c "print(round($end - $start, 3))") $rate" >>"$OUT/runs.txt"
  printf '  %-14s %8.2f s  rate %s\n' "$name" "$(python3 -c "print($end - $start)")" "$rate" >&2
}

onestep_train() {  # PRESET STEPS LOG_EVERY SETTINGS...
  local preset=$1 steps=$2 every=$3
  shift 3
  rm -rf "$OUT/run"
  "$BIN" train --config "$preset" --run "$OUT/run" --set train.steps="$steps" --set train.log_every="$every" \
    --set train.checkpoint_every=0 --set train.sample_every=-1 --set train.threads="$THREADS" "$@"
}

: >"$OUT/runs.txt"
for row in $ROWS; do
  for ((i = 1; i <= PAIRS; ++i)); do
    case $row in
      ect)
        echo "ect pair $i/$PAIRS" >&2
        run ect.ref ref_steps $REF ect --ect "$ECT" --batch 32 --steps $((ECT_STEPS - 5)) --warmup 5 \
          --threads "$THREADS" --dropout "$DROPOUT"
        run ect.onestep onestep_train onestep_train fmnist-ect-cpu "$ECT_STEPS" "$LOG" \
          --init assets/fmnist_edm_teacher.safetensors --set model.dropout="$DROPOUT" --set 'train.ema=[0.9999]' \
          --set objective.target_estimate=single_sample --set objective.posterior_bank=0
        ;;
      mlp)
        echo "mlp pair $i/$PAIRS" >&2
        run mlp.ref ref_steps $REF mlp --batch 512 --steps $((MLP_STEPS - 10)) --warmup 10 --threads "$THREADS"
        run mlp.onestep onestep_train onestep_train points-ect "$MLP_STEPS" "$MLP_LOG"
        ;;
      sample)
        echo "sample pair $i/$PAIRS" >&2
        run sample.ref "process_images:$SAMPLES" $REF sample --ect "$ECT" --batch 500 --steps $((SAMPLES / 500)) \
          --warmup 0 --threads "$THREADS"
        run sample.onestep "process_images:$SAMPLES" "$BIN" sample \
          --ckpt assets/fmnist_edm_teacher.safetensors --steps 1 --n "$SAMPLES" --batch 500 --out "$OUT/s.npy"
        ;;
      *) die "unknown row '$row' in BENCH_ROWS (ect, mlp, sample)" ;;
    esac
  done
done

python3 - "$OUT/runs.txt" "$PAIRS" "$THREADS" "$DROPOUT" <<'EOF'
import statistics, sys
runs, pairs, threads, dropout = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
by = {}
for line in open(runs):
    name, wall, rate = line.split()
    by.setdefault(name, []).append((float(wall), float(rate)))
labels = {"ect": f"ECT step, fmnist UNet, batch 32, dropout {dropout} (steps/s)",
          "mlp": "2-D MLP ECT step, batch 512 (steps/s)",
          "sample": "1-step sampling, fmnist UNet, batch 500 (img/s, process)"}
print(f"\nonestep vs reference, {threads} threads each, {pairs} alternating pairs; medians; ratios pair by pair "
      "(rate: onestep / reference, wall: reference / onestep; above 1 = onestep faster)")
print(f"| {'loop':<52} | {'reference':>9} | {'onestep':>9} | {'ratio':>6} | {'wall ref s':>10} | {'wall onestep s':>14} | {'wall ratio':>10} |")
print(f"|{'-' * 54}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 12}|{'-' * 16}|{'-' * 12}|")
for row in ("ect", "mlp", "sample"):
    ref, one = by.get(f"{row}.ref"), by.get(f"{row}.onestep")
    if not ref or not one:
        continue
    rate_ratio = statistics.median(o[1] / r[1] for r, o in zip(ref, one))
    wall_ratio = statistics.median(r[0] / o[0] for r, o in zip(ref, one))
    print(f"| {labels[row]:<52} | {statistics.median(r[1] for r in ref):9.2f} | "
          f"{statistics.median(o[1] for o in one):9.2f} | {rate_ratio:6.2f} | "
          f"{statistics.median(r[0] for r in ref):10.2f} | {statistics.median(o[0] for o in one):14.2f} | "
          f"{wall_ratio:10.2f} |")
EOF
