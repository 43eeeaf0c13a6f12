# Sourced by scripts/gpu_check.sh and scripts/gpu_speed.sh (not run by itself): what both need to fit the lent GPU
# machine's limits (docs/gpu.md): one command runs at most 600 s and only files under $OUT come back, also after a
# time-out. So a script is a list of steps, run in the order given, each bounded by what is left of the call's
# budget; after every step the results file is rewritten whole (atomically) in $OUT and the logs are packed there.
#
# The caller sets, before plan_steps and gpu_steps_init: NAME (gpu_check or gpu_speed), TITLE, DEVICE, BUILD, WORK,
# PYTHON, BUDGET (seconds this call may use), STEP_ORDER (every step, in value order), and defines step_<name> for
# each step, step_min[<name>] (seconds a step needs at least to be worth starting) and step_requires[<name>] (a step
# whose outputs it reads, with a function done_<name> telling whether they are there).

log() { echo "[$NAME $(($(date +%s) - START))s] $*"; }
left() { echo $((START + BUDGET - $(date +%s))); }

# Within a step: a line of the results, a failure, and a command bounded by what is left of the budget.
STEP_STATUS=PASS
STEP_NOTES=()
note() { STEP_NOTES+=("$*"); log "$*"; }
fail() { STEP_NOTES+=("FAIL: $*"); [ "$STEP_STATUS" = TIMEOUT ] || STEP_STATUS=FAIL; log "FAIL: $*"; }
# bounded LOG CMD...: runs CMD with its output in LOG (under $WORK/logs) and at most the seconds left (or LIMIT
# when set and smaller); a time-out marks the step TIMEOUT. Returns CMD's status (124 on a time-out).
bounded() {
  local logfile="$WORK/logs/$1" limit; shift
  limit=$(left)
  if [ -n "${LIMIT:-}" ] && [ "$LIMIT" -lt "$limit" ]; then limit=$LIMIT; fi
  [ "$limit" -gt 0 ] || { STEP_STATUS=TIMEOUT; STEP_NOTES+=("TIMEOUT: no time left for $*"); return 124; }
  local began; began=$(date +%s)
  timeout -k 10 "$limit" "$@" > "$logfile" 2>&1
  local status=$?
  # 124: stopped by the time-out; 137 (SIGKILL) counts as one only when the limit was reached (else: out of memory).
  if [ "$status" = 124 ] || { [ "$status" = 137 ] && [ $(($(date +%s) - began)) -ge "$limit" ]; }; then
    STEP_STATUS=TIMEOUT; STEP_NOTES+=("TIMEOUT after $limit s: $(basename "$1") (log $(basename "$logfile"))")
    log "TIMEOUT after $limit s: $*"
  fi
  return "$status"
}

# The results of every step of this and earlier calls on this machine ($WORK/steps.tsv: step, status, seconds,
# time, call, notes); the latest record of a step counts.
record() {
  local name="$1" status="$2" seconds="$3"; shift 3
  local notes; notes="$(printf '%s\037' "$@" | tr '\t\n' '  ')"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$seconds" "$(date -u +%H:%M:%S)" "$START" "$notes" \
    >> "$WORK/steps.tsv"
}

write_report() {
  mkdir -p "$REPORT_DIR"
  local tmp="$REPORT_DIR/.$NAME.txt.tmp"
  {
    echo "=== $TITLE, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $COMMIT, device $DEVICE ==="
    printf '%s\n' "${MACHINE_NOTES[@]}"
    awk -F'\t' -v call="$START" -v order="$STEP_ORDER" -v asked="$STEPS_ASKED" '
      { latest[$1] = $0 }
      END {
        n = split(order, steps, " "); split(asked, a, " "); for (i in a) wanted[a[i]] = 1
        pass = fail = open = 0
        for (i = 1; i <= n; i++) {
          s = steps[i]
          if (!(s in latest)) { if (s in wanted) { print "[PENDING] " s; open++ } continue }
          split(latest[s], f, "\t")
          when = f[5] == call ? "" : ", an earlier call at " f[4]
          printf "[%s] %s (%s s%s)\n", f[2], s, f[3], when
          m = split(f[6], lines, "\037"); for (j = 1; j <= m; j++) if (lines[j] != "") print "    " lines[j]
          if (f[2] == "PASS") pass++; else if (f[2] == "NOT-RUN") open++; else fail++
        }
        printf "steps: %d passed, %d failed or timed out, %d not run\n", pass, fail, open
      }' "$WORK/steps.tsv"
    echo "elapsed $(($(date +%s) - START)) s of this call's budget of $BUDGET s"
  } > "$tmp" && mv "$tmp" "$REPORT_DIR/$NAME.txt"
  tar -czf "$REPORT_DIR/.${NAME}_logs.tgz" -C "$WORK" logs 2>/dev/null \
    && mv "$REPORT_DIR/.${NAME}_logs.tgz" "$REPORT_DIR/${NAME}_logs.tgz"
  [ -z "${REPORT_HOOK:-}" ] || "$REPORT_HOOK"
}

run_step() {
  local name="$1" t
  if [ "$(left)" -lt "${step_min[$name]:-30}" ]; then
    record "$name" NOT-RUN 0 "not started: $(left) s left of the budget of $BUDGET s, it needs at least ${step_min[$name]:-30} s"
    write_report; [ "$CALL_STATUS" != 0 ] || CALL_STATUS=2; return
  fi
  STEP_STATUS=PASS; STEP_NOTES=(); t=$(date +%s)
  log "step $name ($(left) s left)"
  "step_${name//-/_}"
  record "$name" "$STEP_STATUS" $(($(date +%s) - t)) "${STEP_NOTES[@]}"
  write_report
  [ "$STEP_STATUS" = PASS ] || CALL_STATUS=1
}

# The steps asked for (arguments, or every step), each preceded by the steps whose outputs it needs and does not
# find (a call on a fresh machine), in STEP_ORDER.
plan_steps() {
  local -A want=()
  local s r
  [ $# -gt 0 ] || set -- $STEP_ORDER
  for s in "$@"; do
    [[ " $STEP_ORDER " == *" $s "* ]] || { echo "$NAME: unknown step '$s' (steps: $STEP_ORDER)" >&2; exit 64; }
    want[$s]=1
    r="${step_requires[$s]:-}"
    while [ -n "$r" ] && [ -z "${want[$r]:-}" ] && ! "done_${r//-/_}"; do want[$r]=1; r="${step_requires[$r]:-}"; done
  done
  STEPS_ASKED=""
  for s in $STEP_ORDER; do [ -z "${want[$s]:-}" ] || STEPS_ASKED="$STEPS_ASKED $s"; done
  STEPS_ASKED="${STEPS_ASKED# }"
}

gpu_steps_init() {
  START=$(date +%s)
  CALL_STATUS=0
  COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  REPORT_DIR="${OUT:-$WORK/out}"
  mkdir -p "$WORK/logs" "$REPORT_DIR"
  touch "$WORK/steps.tsv"
  MACHINE_NOTES=()
  if command -v nvidia-smi >/dev/null 2>&1; then
    MACHINE_NOTES+=("gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -n1)")
  fi
  MACHINE_NOTES+=("host: $(uname -m), $(nproc) cores; steps of this call: $STEPS_ASKED")
}

no_python() {
  MACHINE_NOTES+=("FAIL: $1: $(echo "$TORCH_INFO" | tail -n1)"); write_report
  echo "$NAME: $1: $(echo "$TORCH_INFO" | tail -n1)" >&2; exit 1
}

# A Python with torch: the machine's on the GPU machines (their python3 has torch and torchvision, nothing can be
# installed there). The CPU dry run makes the same one from PyPI, once, in ~/.cache/onestep/pyenv-gpu-dryrun:
# torch 2.11.0 and torchvision 0.26.0 (the GPU image's), without the CUDA libraries that a machine with a CUDA
# toolkit already has.
gpu_python() {
  local probe='import torch, torchvision; print(torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "available", torch.cuda.is_available(), "torchvision", torchvision.__version__)'
  if TORCH_INFO="$("$PYTHON" -c "$probe" 2>&1)"; then :
  elif [ "$DEVICE" = cpu ] && [ -z "${GPU_PYTHON_SET:-}" ]; then
    local cache="${ONESTEP_CACHE:-$HOME/.cache/onestep}" env
    env="$cache/pyenv-gpu-dryrun"
    PYTHON="$env/bin/python"
    if ! TORCH_INFO="$("$PYTHON" -c "$probe" 2>&1)"; then
      log "making the dry run's Python in $env (torch 2.11.0, torchvision 0.26.0 from PyPI; wheels cached in $cache/wheels)"
      python3 -m venv "$env" && mkdir -p "$cache/wheels" && "$env/bin/pip" download -q --no-deps -d "$cache/wheels" \
        --find-links "$cache/wheels" torch==2.11.0 torchvision==0.26.0 && \
      "$env/bin/pip" install -q --no-deps --find-links "$cache/wheels" torch==2.11.0 torchvision==0.26.0 && \
      "$env/bin/pip" install -q numpy pillow typing-extensions sympy mpmath filelock networkx jinja2 markupsafe \
        fsspec safetensors
      # torch's own libraries that a CUDA toolkit does not bring (cuFile, cuSPARSELt, NVSHMEM); on a machine with no
      # CUDA toolkit at all, the whole dependency set of the torch wheel instead.
      "$PYTHON" -c "$probe" >/dev/null 2>&1 || "$env/bin/pip" install -q --find-links "$cache/wheels" \
        "nvidia-cufile==1.15.1.6.*" "nvidia-cusparselt-cu13==0.8.0" "nvidia-nvshmem-cu13==3.4.5"
      "$PYTHON" -c "$probe" >/dev/null 2>&1 || "$env/bin/pip" install -q torch==2.11.0 torchvision==0.26.0
      TORCH_INFO="$("$PYTHON" -c "$probe" 2>&1)" || no_python "no Python torch for the dry run"
    fi
  else
    no_python "$PYTHON cannot import torch and torchvision"
  fi
  MACHINE_NOTES+=("python: $PYTHON, torch $TORCH_INFO")
}

# Configures BUILD against the Python's torch (CUDA on the GPU machine) and builds TARGETS (all when empty), with
# the header-only libraries carried in .carry/ (scripts/gpu_carry.sh; nothing can be installed on the GPU machine).
gpu_build() {
  local jobs="$1"; shift
  local prefix carry_args=()
  if [ -d "$ROOT/.carry/include" ]; then
    export CPATH="$ROOT/.carry/include${CPATH:+:$CPATH}" LIBRARY_PATH="$ROOT/.carry/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    carry_args=(-DCMAKE_PREFIX_PATH="$ROOT/.carry")
  fi
  prefix="$("$PYTHON" -c 'import torch;print(torch.utils.cmake_prefix_path)')" || { fail "no torch cmake prefix"; return 1; }
  local t; t=$(date +%s)
  if ! bounded cmake.log cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DONESTEP_TORCH_PREFIX="$prefix" \
       "${carry_args[@]}"; then
    tail -n 30 "$WORK/logs/cmake.log"; fail "cmake configure (log cmake.log)"; return 1
  fi
  local line
  while read -r line; do note "$line"; done < <(grep -E "onestep: (LibTorch|NCCL|no nccl)" "$WORK/logs/cmake.log" | sed 's/^-- //')
  if ! bounded build.log cmake --build "$BUILD" -j "$jobs" ${1:+--target "$@"}; then
    grep -E "error|Error" "$WORK/logs/build.log" | head -n 30; fail "build (errors in build.log)"; return 1
  fi
  note "built ${*:-all targets} in $(($(date +%s) - t)) s with $jobs jobs ($(grep -c 'Building CXX' "$WORK/logs/build.log") objects compiled)"
}
