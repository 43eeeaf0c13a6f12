#!/usr/bin/env bash
# Images/s of a fresh run and of a run resumed from its middle checkpoint, over the same steps, from one machine
# state (issue 12 item 6: a process's speed must not depend on how it started). Also checks that the resumed run
# ends on the same bytes. Usage: bench/resume_speed.sh [STEPS] [PRESET]   (STEPS even; default 80, fmnist-ict-cpu)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ONESTEP="${ONESTEP:-$ROOT/build/onestep}"
STEPS="${1:-80}"
PRESET="${2:-fmnist-ict-cpu}"
HALF=$((STEPS / 2))
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
printf -v half_ckpt 'ckpt-%08d.safetensors' "$HALF"
printf -v last_ckpt 'ckpt-%08d.safetensors' "$STEPS"
"$ONESTEP" train --config "$PRESET" --steps "$STEPS" --set train.checkpoint_every="$HALF" \
  --set train.log_every=$((HALF / 2)) --set train.sample_every=-1 --run "$OUT/fresh" > "$OUT/fresh.log" 2>&1 ||
  { cat "$OUT/fresh.log"; exit 1; }
cp -r "$OUT/fresh" "$OUT/resumed"
rm -f "$OUT/resumed/model.safetensors"
echo "$half_ckpt" > "$OUT/resumed/checkpoints/latest"
"$ONESTEP" train --run "$OUT/resumed" --resume > "$OUT/resumed.log" 2>&1 || { cat "$OUT/resumed.log"; exit 1; }
# Mean images/s over the records after the middle checkpoint (the same steps in both runs).
rate() {
  awk -v half="$HALF" '
    match($0, /"images_per_s":[0-9.eE+-]+/) { r = substr($0, RSTART + 15, RLENGTH - 15) }
    match($0, /"step":[0-9]+/) { s = substr($0, RSTART + 7, RLENGTH - 7) + 0; if (s > half) { sum += r; n++ } }
    END { if (n) printf "%.1f", sum / n; else printf "n/a" }' "$1"
}
echo "steps $((HALF + 1))-$STEPS of $PRESET: fresh $(rate "$OUT/fresh/metrics.jsonl") img/s," \
     "resumed $(rate "$OUT/resumed/metrics.jsonl") img/s"
if cmp -s "$OUT/fresh/checkpoints/$last_ckpt" "$OUT/resumed/checkpoints/$last_ckpt"; then
  echo "final checkpoints identical"
else
  echo "final checkpoints DIFFER"; exit 1
fi
