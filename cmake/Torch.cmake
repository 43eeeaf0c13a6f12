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
  add_library(onestep_torch INTERFACE)
  target_link_libraries(onestep_torch INTERFACE ${TORCH_LIBRARIES})
  target_compile_options(onestep_torch INTERFACE ${TORCH_CXX_FLAGS})
  set(ONESTEP_WITH_CUDA ${CAFFE2_USE_CUDA})
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
