#!/usr/bin/env bash
# scripts/gpu_lib.sh, the step runner of the GPU scripts: a step runs only while the call's budget has room for it,
# a command that outlives the budget is stopped and its step marked TIMEOUT, the results file is rewritten after
# every step (so a call that is cut off still returns what it did), and a step asked for without the outputs of the
# step it needs brings that step along.
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/out"
NAME=gpu_test; TITLE="step runner test"; DEVICE=cpu; BUILD="$WORK"; PYTHON=python3; BUDGET=5
STEP_ORDER="first slow third needs"
declare -A step_min=([first]=1 [slow]=1 [third]=2 [needs]=1)
declare -A step_requires=([needs]=first)
source "$ROOT/scripts/gpu_lib.sh"
done_first() { [ -f "$WORK/first.done" ]; }
step_first() { touch "$WORK/first.done"; note "first ran"; }
step_slow() { bounded slow.log sleep 60; }
step_third() { note "third ran"; }
step_needs() { note "needs ran"; }
snapshots=0
snapshot() { snapshots=$((snapshots + 1)); cp "$OUT/$NAME.txt" "$WORK/report.$snapshots"; }
REPORT_HOOK=snapshot

failures=0
expect() {  # expect FILE PATTERN WHAT
  if ! grep -qE "$2" "$1"; then echo "FAIL: $3: no /$2/ in $(basename "$1"):"; sed 's/^/  | /' "$1"; failures=$((failures + 1)); fi
}

plan_steps needs
[ "$STEPS_ASKED" = "first needs" ] || { echo "FAIL: plan of 'needs' without first's outputs: '$STEPS_ASKED'"; failures=$((failures + 1)); }
(plan_steps bogus 2>/dev/null); [ $? = 64 ] || { echo "FAIL: an unknown step is not refused"; failures=$((failures + 1)); }

plan_steps first slow third
gpu_steps_init
write_report
t=$(date +%s)
for step in $STEPS_ASKED; do run_step "$step"; done
seconds=$(($(date +%s) - t))

expect "$WORK/report.1" '^\[PENDING\] first' "before any step, every step is pending"
expect "$WORK/report.1" '^\[PENDING\] third' "before any step, every step is pending"
expect "$WORK/report.2" '^\[PASS\] first' "the results file after the first step"
expect "$WORK/report.2" '^    first ran' "a step's notes in the results file"
expect "$WORK/report.2" '^\[PENDING\] slow' "steps not yet run after the first step"
expect "$WORK/report.3" '^\[TIMEOUT\] slow' "a command past the budget is stopped and its step marked"
expect "$WORK/report.4" '^\[NOT-RUN\] third' "a step with no room left in the budget is not started"
expect "$WORK/report.4" '1 passed, 1 failed or timed out, 1 not run' "the summary line"
[ "$seconds" -le 30 ] || { echo "FAIL: the steps took $seconds s with a budget of $BUDGET s and a step of sleep 60"; failures=$((failures + 1)); }
[ "$CALL_STATUS" = 1 ] || { echo "FAIL: exit status $CALL_STATUS, want 1 (a step timed out)"; failures=$((failures + 1)); }
[ -s "$OUT/${NAME}_logs.tgz" ] && tar -tzf "$OUT/${NAME}_logs.tgz" | grep -q 'logs/slow.log' \
  || { echo "FAIL: the logs are not packed into \$OUT"; failures=$((failures + 1)); }

# A later call on the same machine: first's outputs are there, so 'needs' runs alone; earlier results are kept.
START_EARLIER=$START
sleep 1
plan_steps needs
[ "$STEPS_ASKED" = "needs" ] || { echo "FAIL: plan of 'needs' with first's outputs: '$STEPS_ASKED'"; failures=$((failures + 1)); }
gpu_steps_init
for step in $STEPS_ASKED; do run_step "$step"; done
expect "$OUT/$NAME.txt" '^\[PASS\] first \([0-9]+ s, an earlier call at' "an earlier call's result, marked"
expect "$OUT/$NAME.txt" '^\[PASS\] needs \([0-9]+ s\)$' "this call's result"

[ "$failures" = 0 ] && echo "gpu_steps_test: all checks passed" || { echo "gpu_steps_test: $failures failed"; exit 1; }
