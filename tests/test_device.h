#pragma once
// The device the tensor tests run on. ONESTEP_TEST_DEVICE=cuda runs every test that uses test_device() on CUDA
// (scripts/gpu_check.sh does); unset or "cpu", they run on the CPU. Asking for CUDA on a machine without it is an
// error, never a silent CPU run. CUDA-only tests call ONESTEP_SKIP_WITHOUT_CUDA().
#include <torch/cuda.h>
#include <torch/types.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace onestep::testing {

inline torch::Device test_device() {
  const char* env = std::getenv("ONESTEP_TEST_DEVICE");
  const std::string name = env == nullptr ? "" : env;
  if (name.empty() || name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw std::runtime_error("ONESTEP_TEST_DEVICE=cuda but no CUDA device is available");
    return torch::Device(torch::kCUDA, 0);
  }
  throw std::runtime_error("ONESTEP_TEST_DEVICE must be cpu or cuda, got '" + name + "'");
}

// train.device / --device spelling of test_device().
inline std::string test_device_name() { return test_device().is_cuda() ? "cuda" : "cpu"; }

inline bool testing_on_cuda() { return test_device().is_cuda(); }

// Tolerance for comparisons against CPU-computed fixtures: exact kernels on the CPU, cuDNN/cuBLAS reorder sums.
inline double device_tolerance(double cpu_tolerance, double cuda_tolerance) {
  return testing_on_cuda() ? cuda_tolerance : cpu_tolerance;
}

}  // namespace onestep::testing

#define ONESTEP_SKIP_WITHOUT_CUDA()                                                          \
  do {                                                                                       \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "needs CUDA: skipped on this machine"; \
  } while (0)
