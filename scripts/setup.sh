#!/usr/bin/env bash
# Installs what onestep needs and builds it. Idempotent: a second run only rebuilds what changed.
#   - C++ libraries and the Fashion-MNIST data from Debian's packages (apt-get), when missing
#   - LibTorch: an existing Torch (Torch_DIR / CMAKE_PREFIX_PATH, or a python3 that has torch) is used as is;
#     otherwise the pinned torch wheel is installed into .venv/ (the wheel itself is cached in ~/.cache/onestep)
#   - configure (CMake) and build into build/ (ccache when present)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TORCH_VERSION=2.11.0
CUDA_RUNTIME_WHEELS=("nvidia-cuda-runtime==13.0.96.*" "nvidia-cuda-cupti==13.0.85.*")
CACHE="${ONESTEP_CACHE:-$HOME/.cache/onestep}"
BUILD_DIR="${ONESTEP_BUILD_DIR:-$ROOT/build}"
BUILD_TYPE="${ONESTEP_BUILD_TYPE:-Release}"
log() { echo "[setup] $*"; }

# --- Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(cmake g++ make ccache python3-venv libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libstb-dev
              zlib1g-dev libgtest-dev libgmock-dev libbenchmark-dev dataset-fashion-mnist unzip
              libprotobuf-dev protobuf-compiler libisal-dev libgloo-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- LibTorch --------------------------------------------------------------------------------
TORCH_PREFIX=""
if [ -n "${Torch_DIR:-}" ]; then
  TORCH_PREFIX="$Torch_DIR"; log "using Torch_DIR=$Torch_DIR"
elif [ -n "${CMAKE_PREFIX_PATH:-}" ] && ls "${CMAKE_PREFIX_PATH%%:*}"/Torch/TorchConfig.cmake >/dev/null 2>&1; then
  TORCH_PREFIX="${CMAKE_PREFIX_PATH%%:*}"; log "using Torch from CMAKE_PREFIX_PATH"
elif [ -z "${ONESTEP_FORCE_VENV:-}" ] && python3 -c 'import torch' >/dev/null 2>&1; then
  TORCH_PREFIX="$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')"
  log "using the system python's torch $(python3 -c 'import torch;print(torch.__version__)')"
fi

VENV="$ROOT/.venv"
if [ -z "$TORCH_PREFIX" ]; then
  SITE="$(ls -d "$VENV"/lib/python3*/site-packages 2>/dev/null | head -n1 || true)"
  if [ -z "$SITE" ] || [ ! -f "$SITE/torch/lib/libtorch_cpu.so" ] || \
     [ "$(cat "$VENV/.onestep-torch" 2>/dev/null)" != "$TORCH_VERSION" ]; then
    log "installing torch $TORCH_VERSION into .venv (wheel cache: $CACHE/wheels)"
    mkdir -p "$CACHE/wheels"
    python3 -m venv "$VENV"
    # C++ only needs the libraries of the wheel; its Python dependencies (and the multi-GB CUDA math
    # libraries, unused by a CPU build) are skipped. libtorch_cpu.so links the small CUDA runtime and CUPTI.
    "$VENV/bin/pip" download -q --no-deps -d "$CACHE/wheels" "torch==$TORCH_VERSION" "${CUDA_RUNTIME_WHEELS[@]}" \
      --find-links "$CACHE/wheels"
    "$VENV/bin/pip" install -q --no-deps --no-index --find-links "$CACHE/wheels" \
      "torch==$TORCH_VERSION" "${CUDA_RUNTIME_WHEELS[@]}"
    echo "$TORCH_VERSION" > "$VENV/.onestep-torch"
  fi
fi

# --- configure and build ---------------------------------------------------------------------
export CCACHE_DIR="${CCACHE_DIR:-$CACHE/ccache}"
export CCACHE_BASEDIR="$ROOT"
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
CMAKE_ARGS=(-S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE")
if [ -n "$TORCH_PREFIX" ]; then CMAKE_ARGS+=(-DONESTEP_TORCH_PREFIX="$TORCH_PREFIX"); fi
# Unity batches (see CMakeLists.txt) make a first build about twice as fast; ONESTEP_UNITY_BUILD=OFF for
# edit-compile cycles on one file.
if [ -n "${ONESTEP_UNITY_BUILD:-}" ]; then CMAKE_ARGS+=(-DONESTEP_UNITY_BUILD="$ONESTEP_UNITY_BUILD"); fi
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] || [ -n "${ONESTEP_UNITY_BUILD:-}" ]; then
  log "configuring ($BUILD_TYPE) in $BUILD_DIR"
  cmake "${CMAKE_ARGS[@]}" >/dev/null
fi
JOBS="${ONESTEP_JOBS:-$(nproc)}"
log "building with $JOBS jobs"
cmake --build "$BUILD_DIR" -j "$JOBS" ${ONESTEP_TARGETS:+--target $ONESTEP_TARGETS}
