#pragma once
// The training checkpoints of a run (io/checkpoint_layout.h says what a file holds): writing one (rank 0), keeping
// the newest train.keep_checkpoints, finding the latest, and reading one back into the trainer's state so that a
// resumed run continues bitwise where it stopped.
#include "config/config.h"
#include "data/dataset.h"
#include "io/run_dir.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "trainer/ema.h"
#include "trainer/optimizer.h"

#include <ATen/core/Generator.h>

#include <cstdint>
#include <filesystem>
#include <vector>

namespace onestep {

// Where training stands: what a checkpoint records beside the tensors.
struct TrainingCounters {
  int64_t step = 0;
  int64_t images_seen = 0;
  int64_t nonfinite_streak = 0;
};

// The parts of the trainer a checkpoint saves and restores, by reference.
struct TrainingState {
  Denoiser& model;
  std::vector<Ema>& emas;
  Optimizer& optimizer;
  Objective& objective;
  at::Generator& objective_generator;
  BatchLoader& loader;
  TrainingCounters& counters;
  torch::Device device;  // the training device: objective state and the CUDA generator's state go there
};

class TrainingCheckpoints {
 public:
  // `keep`: train.keep_checkpoints. `config`: the run's effective configuration, stored in every file.
  TrainingCheckpoints(RunDir& run, int64_t keep, Json config);

  // Writes the checkpoint of `state`'s step, points `latest` at it and removes the oldest beyond `keep`.
  // `world_size` (0 = no process group) is recorded for information: any world size resumes it.
  std::filesystem::path write(TrainingState& state, int world_size);
  // The checkpoint named by the run's `latest` pointer; errors when the run has none.
  std::filesystem::path latest() const;
  // Restores `state` (weights, EMAs, optimizer, objective state, random states, counters, data position) from
  // `path`; one error line naming the file and what does not fit.
  void read(const std::filesystem::path& path, TrainingState& state) const;

 private:
  void remove_old(const std::filesystem::path& keep_this);

  RunDir& run_;
  int64_t keep_;
  Json config_;
};

}  // namespace onestep
