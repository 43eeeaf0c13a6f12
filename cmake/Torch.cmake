# Provides the target onestep::torch.
# - ONESTEP_TORCH_PREFIX given (a LibTorch or a python torch's cmake_prefix_path): the official TorchConfig,
#   which brings CUDA when that torch was built with it (the GPU machines).
# - otherwise the pinned wheel in .venv/: a CPU-only link against libtorch_cpu and libc10. The wheel is a CUDA
#   build, but its CPU half needs only the small CUDA runtime that scripts/setup.sh installs beside it, so CI and
#   laptops avoid gigabytes of CUDA math libraries.
set(ONESTEP_TORCH_PREFIX "" CACHE PATH "CMake prefix of an existing LibTorch (empty: use .venv)")
if(ONESTEP_TORCH_PREFIX)
  list(PREPEND CMAKE_PREFIX_PATH "${ONESTEP_TORCH_PREFIX}")
  find_package(Torch REQUIRED)
  # TorchConfig lists CUDA_nvrtc_LIBRARY even when it was not found (a toolkit without NVRTC, as CI's CUDA compile
  # check assembles); onestep compiles no kernels at run time, and libtorch_cuda loads NVRTC itself when needed.
  list(FILTER TORCH_LIBRARIES EXCLUDE REGEX "-NOTFOUND$")
  add_library(onestep_torch INTERFACE)
  target_link_libraries(onestep_torch INTERFACE ${TORCH_LIBRARIES})
  target_compile_options(onestep_torch INTERFACE ${TORCH_CXX_FLAGS})
  set(ONESTEP_WITH_CUDA ${CAFFE2_USE_CUDA})
  if(ONESTEP_WITH_CUDA)
    # ProcessGroupNCCL (src/distributed/communicator.cpp) needs nccl.h: the CUDA toolkit's, or the nvidia-nccl
    # wheel's beside a pip torch (site-packages/nvidia/nccl). Its code is in libtorch_cuda; libnccl is linked too in
    # case the header's inline functions call it. Without the header, data-parallel runs use Gloo.
    set(_nccl_hints "${ONESTEP_TORCH_PREFIX}/../../../nvidia/nccl" "${CUDAToolkit_LIBRARY_ROOT}" "$ENV{CUDA_HOME}")
    find_path(ONESTEP_NCCL_INCLUDE_DIR nccl.h HINTS ${_nccl_hints} PATH_SUFFIXES include)
    find_library(ONESTEP_NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${_nccl_hints} PATH_SUFFIXES lib lib64)
    if(ONESTEP_NCCL_INCLUDE_DIR)
      target_include_directories(onestep_torch SYSTEM INTERFACE "${ONESTEP_NCCL_INCLUDE_DIR}")
      if(ONESTEP_NCCL_LIBRARY)
        target_link_libraries(onestep_torch INTERFACE "${ONESTEP_NCCL_LIBRARY}")
      endif()
      message(STATUS "onestep: NCCL header ${ONESTEP_NCCL_INCLUDE_DIR}, library ${ONESTEP_NCCL_LIBRARY}")
    else()
      message(STATUS "onestep: no nccl.h found: data-parallel runs on CUDA will use Gloo")
    endif()
  endif()
else()
  file(GLOB _site "${CMAKE_SOURCE_DIR}/.venv/lib/python3*/site-packages/torch")
  if(NOT _site)
    message(FATAL_ERROR "No LibTorch found: run scripts/setup.sh (it installs torch into .venv), "
                        "or pass -DONESTEP_TORCH_PREFIX=<torch cmake prefix>")
  endif()
  list(GET _site 0 TORCH_ROOT)
  add_library(onestep_torch INTERFACE)
  target_include_directories(onestep_torch SYSTEM INTERFACE
    "${TORCH_ROOT}/include" "${TORCH_ROOT}/include/torch/csrc/api/include")
  target_compile_definitions(onestep_torch INTERFACE _GLIBCXX_USE_CXX11_ABI=1)
  target_link_libraries(onestep_torch INTERFACE
    "${TORCH_ROOT}/lib/libtorch_cpu.so" "${TORCH_ROOT}/lib/libc10.so")
  target_link_options(onestep_torch INTERFACE "-Wl,-rpath,${TORCH_ROOT}/lib")
  set(ONESTEP_WITH_CUDA OFF)
endif()
add_library(onestep::torch ALIAS onestep_torch)
message(STATUS "onestep: LibTorch ${TORCH_ROOT}${ONESTEP_TORCH_PREFIX}, CUDA ${ONESTEP_WITH_CUDA}")
