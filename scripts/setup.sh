#!/usr/bin/env bash
# Installs what onestep needs and builds it. Idempotent: a second run only rebuilds what changed.
#   - C++ libraries and the Fashion-MNIST data from Debian's packages (apt-get), when missing
#   - LibTorch: an existing Torch (Torch_DIR / CMAKE_PREFIX_PATH, or a python3 that has torch) is used as is;
#     otherwise the pinned torch wheel is installed into .venv/ (the wheel itself is cached in ~/.cache/onestep)
#   - configure (CMake) and build into build/ (ccache when present)
# With ONESTEP_CUDA_COMPILE=1 it builds the CUDA configuration instead, into build-cuda/ (ONESTEP_CUDA_BUILD_DIR),
# compiled and linked but never run (CI's check that CUDA-only code still compiles; docs/gpu.md): the pinned wheel's
# LibTorch through its official TorchConfig, and a CUDA 13.0 toolkit assembled from NVIDIA's PyPI wheels in
# ~/.cache/onestep/cuda-13.0.2 (nvcc and headers only; the multi-GB math libraries are never installed).
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
if [ -n "${ONESTEP_CUDA_COMPILE:-}" ]; then
  ONESTEP_FORCE_VENV=1  # the CUDA check compiles against the pinned wheel, whatever torch this machine has
elif [ -n "${Torch_DIR:-}" ]; then
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

# --- the CUDA compile check (ONESTEP_CUDA_COMPILE=1) -------------------------------------------
# The toolkit of the wheel's CUDA (torch 2.11.0 requires cuda-toolkit 13.0.2; these are that release's components).
# TorchConfig needs a working nvcc (enable_language(CUDA), FindCUDA, FindCUDAToolkit) and the CUDA runtime;
# ATen/cuda/CUDAContext.h, which ProcessGroupNCCL.hpp includes, needs the cuBLAS, cuSPARSE and cuSOLVER headers,
# and communicator.cpp needs nccl.h. Of those four wheels (about 970 MB) only the headers are kept.
CUDA_TOOL_WHEELS=("nvidia-cuda-nvcc==13.0.88.*" "nvidia-cuda-crt==13.0.88.*" "nvidia-nvvm==13.0.88.*"
                  "nvidia-cuda-cccl==13.0.85.*")
CUDA_HEADER_WHEELS=("nvidia-cublas==13.1.0.3.*" "nvidia-cusparse==12.6.3.3.*" "nvidia-cusolver==12.0.4.66.*"
                    "nvidia-nccl-cu13==2.28.9")
CUDA_ROOT="$CACHE/cuda-13.0.2"

# Lays out $CUDA_ROOT like an installed toolkit (bin/, nvvm/, include/, lib64/), once; a stamp names the wheels.
assemble_cuda_toolkit() {
  local stamp="$CUDA_ROOT/.onestep-wheels" want="${CUDA_RUNTIME_WHEELS[*]} ${CUDA_TOOL_WHEELS[*]} ${CUDA_HEADER_WHEELS[*]}"
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && return 0
  log "assembling a CUDA 13.0 toolkit (nvcc + headers) from PyPI wheels into $CUDA_ROOT"
  local tmp; tmp="$(mktemp -d)"
  "$VENV/bin/pip" download -q --no-deps -d "$CACHE/wheels" --find-links "$CACHE/wheels" \
    "${CUDA_RUNTIME_WHEELS[@]}" "${CUDA_TOOL_WHEELS[@]}"
  "$VENV/bin/pip" download -q --no-deps -d "$tmp/headers" "${CUDA_HEADER_WHEELS[@]}"
  local spec wheel version
  for spec in "${CUDA_RUNTIME_WHEELS[@]}" "${CUDA_TOOL_WHEELS[@]}"; do
    version="${spec#*==}"
    wheel="$(ls "$CACHE"/wheels/"$(echo "${spec%%=*}" | tr - _)"-"${version%.\*}"[-.]*.whl | head -n1)"
    unzip -q -o "$wheel" 'nvidia/cu13/*' -d "$tmp/x"
  done
  rm -f "$tmp"/x/nvidia/cu13/lib/{libcupti,libnvperf,libpcsampling,libcheckpoint}*  # CUPTI: not for compiling
  for wheel in "$tmp"/headers/*.whl; do
    unzip -q -o "$wheel" 'nvidia/*/include/*' -d "$tmp/x"
  done
  rm -rf "$CUDA_ROOT"; mkdir -p "$CUDA_ROOT"
  mv "$tmp/x/nvidia/cu13/bin" "$tmp/x/nvidia/cu13/nvvm" "$tmp/x/nvidia/cu13/include" "$CUDA_ROOT/"
  mv "$tmp/x/nvidia/cu13/lib" "$CUDA_ROOT/lib64"
  cp -r "$tmp/x/nvidia/nccl/include/." "$CUDA_ROOT/include/"
  # The wheels ship only versioned names; the linker and FindCUDAToolkit look for the plain ones.
  (cd "$CUDA_ROOT/lib64" && for lib in lib*.so.*; do ln -sf "$lib" "${lib%%.so.*}.so"; done)
  rm -rf "$tmp"
  echo "$want" > "$stamp"
}

build_cuda_check() {
  assemble_cuda_toolkit
  local build="${ONESTEP_CUDA_BUILD_DIR:-$ROOT/build-cuda}" site
  site="$(ls -d "$VENV"/lib/python3*/site-packages | head -n1)"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    log "configuring the CUDA compile check in $build"
    mkdir -p "$build"
    # The pinned LibTorch's own TorchConfig, as on a GPU machine. Nothing is run, so the link may leave the symbols
    # of the CUDA math libraries (libtorch_cuda.so's needs) unresolved; every symbol onestep uses must resolve.
    PATH="$CUDA_ROOT/bin:$PATH" CUDA_HOME="$CUDA_ROOT" cmake -S "$ROOT" -B "$build" -DCMAKE_BUILD_TYPE=Release \
      -DONESTEP_TORCH_PREFIX="$site/torch/share/cmake" -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT" \
      -DCUDAToolkit_ROOT="$CUDA_ROOT" -DCMAKE_CUDA_COMPILER="$CUDA_ROOT/bin/nvcc" -DTORCH_CUDA_ARCH_LIST=9.0 \
      -DCMAKE_IGNORE_PREFIX_PATH="/usr/local;/usr/local/cuda;/opt/cuda" \
      -DCMAKE_EXE_LINKER_FLAGS="-Wl,--allow-shlib-undefined -Wl,-rpath-link,$CUDA_ROOT/lib64" >"$build/onestep-configure.log" 2>&1 \
      || { tail -n 40 "$build/onestep-configure.log"; log "CUDA configure failed (log: $build/onestep-configure.log)"; exit 1; }
    grep -E "onestep:|CUDA detected" "$build/onestep-configure.log" | sed 's/^-- /[setup] /'
  fi
  # The targets with CUDA-only code: the library (ProcessGroupNCCL in communicator.cpp), the program, and the
  # benchmark (CUDA allocator statistics). The tests hold none today; ONESTEP_CUDA_TARGETS="all" adds them.
  local targets="${ONESTEP_CUDA_TARGETS:-onestep_lib onestep onestep_train_bench}"
  log "building the CUDA configuration (compile and link, no run): $targets, ${ONESTEP_JOBS:-$(nproc)} jobs"
  PATH="$CUDA_ROOT/bin:$PATH" cmake --build "$build" -j "${ONESTEP_JOBS:-$(nproc)}" --target $targets
}

# --- configure and build ---------------------------------------------------------------------
export CCACHE_DIR="${CCACHE_DIR:-$CACHE/ccache}"
export CCACHE_BASEDIR="$ROOT"
export CCACHE_SLOPPINESS="pch_defines,time_macros,include_file_mtime,include_file_ctime"
if [ -n "${ONESTEP_CUDA_COMPILE:-}" ]; then build_cuda_check; exit 0; fi
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
