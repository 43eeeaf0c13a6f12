#pragma once
// The one owner of where this process computes and of the process-wide settings of a run: the device choice
// (auto | cpu | cuda) resolved once, the GPU of a data-parallel rank, and the global flags of PyTorch (TF32,
// cuDNN autotuning, deterministic algorithms), the intra-op threads, the OpenMP wait policy and the global seed,
// applied by configure_process() in one call that every command (train, sample, eval) makes before its work.
#include <c10/core/Device.h>

#include <cstdint>
#include <optional>
#include <string>

namespace onestep {

enum class DeviceChoice { kAuto, kCpu, kCuda };

// "auto" | "cpu" | "cuda"; an error naming `key` (train.device, --device) for anything else.
DeviceChoice parse_device_choice(const std::string& text, const std::string& key);
std::string device_choice_name(DeviceChoice choice);

// auto = CUDA when a device is available, else the CPU; cuda without a device is an error naming `key`. A CUDA
// result is cuda:0 (rank_device picks a rank's GPU).
c10::Device resolve_device(DeviceChoice choice, const std::string& key);

// The GPU index of the process with local rank `local_rank` when it sees `visible` GPUs: local_rank % visible.
// One process per GPU on a machine (torchrun, onestep launch: all GPUs visible, LOCAL_RANK < visible) gives
// cuda:<LOCAL_RANK>; a SLURM task bound to its own GPU (--gpus-per-task=1, --gpu-bind) sees one device, index 0,
// whatever its SLURM_LOCALID.
int64_t rank_gpu_index(int local_rank, int64_t visible);
// `resolved` for this rank: a CUDA device becomes cuda:<rank_gpu_index(local_rank, visible GPUs)>.
c10::Device rank_device(const c10::Device& resolved, int local_rank);

// CUDA's fp32 precision for convolutions (cuDNN) and matrix products (cuBLAS): IEEE fp32 (allow_tf32 = False) or
// TF32. Set through the legacy switches, torch.backends.cuda.matmul.allow_tf32 / torch.backends.cudnn.allow_tf32,
// which keep ATen's legacy and per-operator precision fields in step: ATen's allowTF32CuBLAS() and
// allowTF32CuDNN() refuse a state where they disagree ("mix of the legacy and new APIs"), and cuBLAS asks on
// every handle, so setting only the per-operator fields failed the first CUDA matrix product.
void set_cuda_tf32(bool allow);
// Deterministic cuDNN algorithms, no cuDNN autotuning, PyTorch's deterministic-algorithm mode (warning, not
// failing, on an op without a deterministic kernel) and cuBLAS's fixed workspace (CUBLAS_WORKSPACE_CONFIG=:4096:8
// unless already set; it must precede the first cuBLAS call of the process). Off restores PyTorch's defaults.
void set_deterministic_algorithms(bool on);
// The three CUDA math flags of a run (train.tf32, train.cudnn_benchmark, train.deterministic), process-wide;
// deterministic turns autotuning off.
void set_cuda_math(bool tf32, bool cudnn_benchmark, bool deterministic);
// Makes `device` the current CUDA device of this process (c10::cuda::set_device), so that every CUDA context,
// cuBLAS handle and NCCL communicator this rank creates lives on its own GPU; nothing for a CPU device.
void use_device(const c10::Device& device);

// Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16, as oneDNN's bf16 kernels need); without it
// bf16 autocast on the CPU would emulate the format and run slower than fp32.
bool cpu_has_native_bf16();

struct ProcessSettings {
  DeviceChoice device = DeviceChoice::kAuto;
  std::string device_key = "train.device";  // names the setting in errors
  int local_rank = 0;                       // the process's index on its machine (launch environment)
  bool tf32 = false;
  bool cudnn_benchmark = false;
  bool deterministic = false;               // wins over cudnn_benchmark
  int64_t threads = 0;                      // intra-op threads; 0 = LibTorch's default
  std::string cpu_wait = "auto";            // auto | spin | sleep (core/cpu_wait.h); CPU runs only
  std::string cpu_wait_key = "train.cpu_wait";
  std::optional<uint64_t> seed;             // torch::manual_seed, when set
};

// Applies every setting above, in the order they need (the OpenMP wait policy first: it may re-execute the
// process), and returns the device of this process (rank_device of the resolved choice, made current).
c10::Device configure_process(const ProcessSettings& settings);

}  // namespace onestep
