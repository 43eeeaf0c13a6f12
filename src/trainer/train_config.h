#pragma once
// The [train] section: optimizer, schedule, EMAs, precision, and how often to log, sample, evaluate and
// checkpoint. Paper values are in configs/ (docs/methods.md sections 3-8).
#include "config/config.h"
#include "core/device.h"
#include "trainer/ema.h"
#include "trainer/optimizer.h"

#include <string>
#include <vector>

namespace onestep {

// train.lr_decay (TrainConfig::lr_decay says what each is).
enum class LrDecay { None, Cosine, Linear, InverseSqrt };
template <>
struct EnumTable<LrDecay> {
  static constexpr EnumNames<LrDecay, 4> names{{{LrDecay::None, "none"},
                                                {LrDecay::Cosine, "cosine"},
                                                {LrDecay::Linear, "linear"},
                                                {LrDecay::InverseSqrt, "inverse_sqrt"}}};
};

struct TrainConfig {
  int64_t steps = 1000;             // K, total optimizer steps
  int64_t batch = 128;              // the global batch (all processes of a data-parallel run together)
  int64_t batch_per_gpu = 0;        // gradient accumulation: at most this many samples per forward/backward; a
                                    // process's slice (batch / processes) runs in ceil(slice / batch_per_gpu)
                                    // micro-batches before the one gradient average and optimizer step. 0 = off
  double lr = 1e-4;
  OptimizerKind optimizer = OptimizerKind::RAdam;
  AdamHyper hyper;                  // betas = [0.9, 0.999], eps, weight_decay
  double warmup_mimg = 0.0;         // linear LR warm-up over this many Mimg (EDM: 10); 0 = off
  int64_t warmup_steps = 0;         // or over this many steps; 0 = off
  LrDecay lr_decay = LrDecay::None;  // none | cosine | linear: LR to 0 at train.steps (none of the papers
                                    // decays; a small network's fine structure settles with it,
                                    // docs/points-suite.md); inverse_sqrt: EDM2's
                                    // 1 / sqrt(max(images / (lr_decay_batches * batch), 1))
  double lr_decay_start = 0.0;      // fraction of train.steps at which the decay begins
  int64_t lr_decay_batches = 0;     // inverse_sqrt: EDM2's t_ref in batches (ECT ImageNet 2000, EDM2-64 35000)
  double grad_clip = 0.0;           // max global gradient norm; 0 = off
  bool grad_nan_to_num = true;      // nan -> 0, +-inf -> +-1e5 (docs/methods.md sections 3, 7)
  std::vector<double> ema = {};     // fixed per-step betas
  std::vector<double> ema_halflife_mimg = {};  // EDM half-life rules
  double ema_rampup = 0.05;         // ramp ratio of the half-life rules; 0 = off
  std::vector<double> ema_phema_std = {};  // EDM2 power-function EMAs by relative std (ECT: 0.010, 0.050, 0.100)
  int64_t phema_snapshot_every = 0;  // write the power-function EMAs to <run>/phema/ every this many steps, for
                                     // `onestep phema` (post-hoc reconstruction); 0 = never
  bool bf16 = false;                // autocast to bfloat16 (fp32 master weights) on CUDA and on CPUs with native bf16
  bool tf32 = false;                // TF32 in CUDA convolutions and matrix products; off as in EDM's and ECT's
                                    // training loops (allow_tf32 = False): the loss weights 1/(t - r) amplify
                                    // the student-teacher difference that TF32's 10-bit mantissa would blur
  bool deterministic = false;       // deterministic cuDNN/cuBLAS algorithms (bitwise-repeatable CUDA runs and
                                    // resumes, at some speed); CPU runs are deterministic either way
  bool cudnn_benchmark = false;     // cuDNN autotuning of convolution algorithms (torch.backends.cudnn.benchmark;
                                    // ECT's and EDM's loops turn it on); not with deterministic
  bool channels_last = false;       // NHWC memory layout of the 4-D weights and of the image batches (tensor-core
                                    // convolutions without layout transposes); checkpoints stay in NCHW
  int64_t checkpoint_every = 1000;  // 0 = only at the end
  int64_t keep_checkpoints = 3;
  int64_t sample_every = 0;         // 0 = only at the end; < 0 = never
  int64_t sample_count = 64;        // images in a grid
  int64_t log_every = 10;
  int64_t max_nonfinite = 10;       // consecutive non-finite losses before stopping
  int64_t seed = 0;
  DeviceChoice device = DeviceChoice::kAuto;  // auto | cpu | cuda
  int64_t threads = 0;              // intra-op threads; 0 = LibTorch's default
  std::string cpu_wait = "auto";    // auto | spin | sleep: how OpenMP threads wait on the CPU (core/cpu_wait.h);
                                    // auto sleeps when other processes keep the cores busy at the start

  std::vector<EmaRule> ema_rules() const;
  // LR multiplier of warm-up and decay for the step that starts at (step, images_seen).
  double lr_factor(int64_t step, int64_t images_seen) const;

  // The process-wide settings of a run of this configuration (core/device.h), for the process with local rank
  // `local_rank` (its GPU).
  ProcessSettings process_settings(int local_rank) const;

  static TrainConfig from_config(const Json& root);  // reads [train], rejects unknown keys
  Json to_json() const;
};

}  // namespace onestep
