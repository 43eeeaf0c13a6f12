#include "core/device.h"

#include "core/cpu_wait.h"
#include "core/error.h"

#include <ATen/Context.h>
#include <ATen/cpu/Utils.h>
#include <torch/cuda.h>
#include <torch/utils.h>

#ifdef ONESTEP_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <cstdlib>

namespace onestep {

bool cpu_has_native_bf16() {
  static const bool native = [] {
    const auto caps = at::cpu::get_cpu_capabilities();
    const auto flag = [&](const char* name) {
      const auto it = caps.find(name);
      return it != caps.end() && it->second.isBool() && it->second.toBool();
    };
    return flag("avx512_bf16") || flag("amx_bf16");
  }();
  return native;
}

DeviceChoice parse_device_choice(const std::string& text, const std::string& key) {
  if (text == "auto") return DeviceChoice::kAuto;
  if (text == "cpu") return DeviceChoice::kCpu;
  if (text == "cuda") return DeviceChoice::kCuda;
  fail(key, ": unknown device '", text, "' (choices: auto, cpu, cuda)");
}

std::string device_choice_name(DeviceChoice choice) {
  switch (choice) {
    case DeviceChoice::kAuto: return "auto";
    case DeviceChoice::kCpu: return "cpu";
    case DeviceChoice::kCuda: return "cuda";
  }
  return "auto";
}

c10::Device resolve_device(DeviceChoice choice, const std::string& key) {
  const bool cuda = torch::cuda::is_available();
  switch (choice) {
    case DeviceChoice::kCpu: return c10::Device(c10::kCPU);
    case DeviceChoice::kCuda: require(cuda, key, " = cuda but no CUDA device is available"); break;
    case DeviceChoice::kAuto: if (!cuda) return c10::Device(c10::kCPU); break;
  }
  return c10::Device(c10::kCUDA, 0);
}

int64_t rank_gpu_index(int local_rank, int64_t visible) {
  require(visible > 0, "no CUDA device is visible to this process (CUDA_VISIBLE_DEVICES?)");
  require(local_rank >= 0, "local rank ", local_rank, " is negative");
  return local_rank % visible;
}

c10::Device rank_device(const c10::Device& resolved, int local_rank) {
  if (!resolved.is_cuda()) return resolved;
  const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(rank_gpu_index(local_rank, visible)));
}

void set_cuda_tf32(bool allow) {
  at::globalContext().setAllowTF32CuBLAS(allow);
  at::globalContext().setAllowTF32CuDNN(allow);
}

void set_deterministic_algorithms(bool on) {
  if (on) ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicCuDNN(on);
  if (on) at::globalContext().setBenchmarkCuDNN(false);
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/true);
}

void set_cuda_math(bool tf32, bool cudnn_benchmark, bool deterministic) {
  set_cuda_tf32(tf32);
  at::globalContext().setBenchmarkCuDNN(cudnn_benchmark && !deterministic);
  set_deterministic_algorithms(deterministic);
}

void use_device(const c10::Device& device) {
  if (!device.is_cuda()) return;
#ifdef ONESTEP_WITH_CUDA
  c10::cuda::set_device(device.index());
#endif
}

c10::Device configure_process(const ProcessSettings& settings) {
  const c10::Device device = rank_device(resolve_device(settings.device, settings.device_key), settings.local_rank);
  // Hundreds of small parallel regions per second on the CPU: the wait policy is chosen first, as it may
  // re-execute the process (core/cpu_wait.h).
  if (device.is_cpu())
    apply_cpu_wait_policy(settings.cpu_wait, settings.threads > 0 ? settings.threads : torch::get_num_threads(),
                          settings.cpu_wait_key);
  if (settings.threads > 0) torch::set_num_threads(static_cast<int>(settings.threads));
  use_device(device);
  set_cuda_math(settings.tf32, settings.cudnn_benchmark, settings.deterministic);
  if (settings.seed) torch::manual_seed(*settings.seed);
  return device;
}

}  // namespace onestep
