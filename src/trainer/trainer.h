#pragma once
// The training loop shared by every method, read as EDM's training_loop.py: each step accumulates the gradients of
// the global batch (this rank's slice, in micro-batches, averaged over the ranks), updates the weights (gradient
// nan_to_num and optional clipping, optimizer step with LR warm-up and decay), updates the EMAs, and then does the
// maintenance (metrics lines, evaluation, checkpoints, sample grids). Its parts live beside it: the ranks
// (data_parallel.h), checkpoints (checkpoints.h, from which `--resume` continues bitwise on CPU), sample grids
// (sample_grid.h) and the metrics log (training_log.h).
#include "data/dataset.h"
#include "io/run_dir.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "samplers/sampler.h"
#include "trainer/checkpoints.h"
#include "trainer/data_parallel.h"
#include "trainer/ema.h"
#include "trainer/optimizer.h"
#include "trainer/train_config.h"
#include "trainer/training_log.h"

#include <ATen/core/Generator.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

namespace onestep {

class Communicator;

// Called every `every` steps (the [eval] section's `every`) with the first EMA (the raw model when there is
// none); its result is merged into that step's metrics line.
using EvalHook = std::function<Json(Denoiser& model, int64_t step)>;

class Trainer {
 public:
  // `effective_config` is the whole configuration (stored in every checkpoint). The trainer moves the model
  // to train.device (this rank's GPU for CUDA); `sample` = nullopt writes no sample grids. The process-wide
  // settings (train.tf32, cudnn_benchmark, deterministic, threads, seed) are the caller's: core/device.h,
  // configure_process(train.process_settings(local_rank)).
  //
  // Data parallel (`communicator` set, world size W): train.batch stays the global batch, of which this rank
  // takes rows [rank * B / W, (rank + 1) * B / W) of every one; gradients are averaged over the ranks
  // (GradientAverager), so every rank takes the same optimizer step. Rank 0 alone writes metrics, checkpoints and
  // sample grids and runs the evaluation hook; every rank loads the same checkpoints, whatever W wrote them.
  // train.batch_per_gpu splits each rank's slice into micro-batches whose gradients accumulate before the one
  // average and optimizer step; the step equals the unsplit one up to float rounding.
  Trainer(RunDir& run, Json effective_config, TrainConfig train, std::optional<SamplerConfig> sample,
          Denoiser model, std::unique_ptr<Objective> objective, std::shared_ptr<const Dataset> data,
          std::shared_ptr<Communicator> communicator = nullptr);
  ~Trainer();

  void set_eval_hook(EvalHook hook, int64_t every) {
    eval_hook_ = std::move(hook);
    eval_every_ = every;
  }
  // Quiet: no progress bar (tests).
  void set_quiet(bool quiet) { quiet_ = quiet; }
  // Off: train() writes no checkpoint when it returns (benchmarks time steps, not an 892 MB write).
  void set_checkpoint_at_end(bool on) { checkpoint_at_end_ = on; }

  // Loads `checkpoint` (weights, EMAs, optimizer, objective state, RNG states, step, data position).
  void load_checkpoint(const std::filesystem::path& checkpoint);
  // The checkpoint named by the run's `latest` pointer; errors when the run has none.
  std::filesystem::path latest_checkpoint() const;

  // Trains until `until_step` optimizer steps are done (default: train.steps); checkpoints at the end.
  void train(int64_t until_step = -1);
  // Writes a checkpoint (rank 0; other ranks return its path without writing).
  std::filesystem::path save_checkpoint();
  // One step's forward and backward on the next batch, the gradients averaged over the ranks, without the
  // update (tests compare it across world sizes): each trainable parameter's name and gradient.
  std::vector<std::pair<std::string, torch::Tensor>> next_batch_gradients();

  int64_t step() const { return counters_.step; }
  int64_t images_seen() const { return counters_.images_seen; }
  Denoiser& model() { return model_; }
  std::vector<Ema>& emas() { return emas_; }
  const torch::Device& device() const { return device_; }

 private:
  struct StepResult {
    bool finite = false;
    double loss = 0, grad_norm = 0, lr = 0;  // grad_norm: 0 unless wanted or clipping
    Json stats;
  };
  // One optimizer step. The loss's finiteness check is its one host synchronisation; want_grad_norm adds the
  // gradient norm's (always computed when train.grad_clip > 0).
  StepResult train_step(bool want_grad_norm);
  // The loader's next batch (this rank's slice) on the training device, in the training memory layout.
  Batch next_batch_on_device();
  // Loss, backward and the gradient average of `batch`; result.finite = false (no backward) when the loss of
  // the global batch is not finite.
  StepResult accumulate_gradients(const Batch& batch);
  // The forward passes and all but the last backward of `batch`'s micro-batches: the slice's mean loss (float64,
  // detached) into `local_loss`, the objective's statistics into `stats`; returns the loss whose backward is left.
  torch::Tensor forward_micro_batches(const Batch& batch, torch::Tensor& local_loss, Json& stats);
  // nan_to_num and clipping of the gradients; their global norm when computed (want_grad_norm or clipping), else 0.
  double condition_gradients(bool want_grad_norm);
  // After a finite step: the metrics line and evaluation when due, checkpoints and sample grids.
  void maintenance(const StepResult& result, int64_t until_step);
  void skip_nonfinite_step();
  void write_samples();
  Denoiser& sampling_model() { return emas_.empty() ? model_ : emas_.front().model(); }
  TrainingState state();

  RunDir& run_;
  Json config_;
  TrainConfig train_;
  std::optional<SamplerConfig> sample_;
  DataParallel ranks_;
  torch::Device device_;
  bool autocast_bf16_ = false;  // train.bf16 where it runs natively (CUDA; CPUs with AVX512-BF16 or AMX)
  Denoiser model_;
  std::unique_ptr<Objective> objective_;
  std::shared_ptr<const Dataset> data_;
  std::unique_ptr<BatchLoader> loader_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<Ema> emas_;
  at::Generator generator_;
  TrainingLog log_;
  TrainingCheckpoints checkpoints_;
  TrainingCounters counters_;
  EvalHook eval_hook_;
  int64_t eval_every_ = 0;
  bool quiet_ = false;
  bool checkpoint_at_end_ = true;
  int64_t micro_batch_ = 0;  // rows per forward/backward when accumulating (train.batch_per_gpu); 0 = the slice
  int64_t last_checkpoint_step_ = -1;
};

}  // namespace onestep
