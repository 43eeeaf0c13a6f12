#pragma once
// A sampling job: n samples made in batches, this process's share of them under a launcher (whole batches,
// distributed/sharding.h). The one loop behind `onestep sample`, `onestep eval` and the training-time evaluation.
#include "distributed/sharding.h"
#include "precond/model.h"
#include "samplers/sampler.h"

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>

namespace onestep {

class Communicator;

// The generator of batch `index` of a sampling job: batch k's latents, labels and fresh noise come from it alone,
// so that any process can make any batch and a sharded job gives the samples of a single process. Batch 0 draws
// from `seed` itself: a job of one batch draws what one generator seeded with `seed` draws; batch k > 0 from a seed
// mixed from (seed, k). CPU, so a seed gives the same samples on every device.
at::Generator batch_generator(uint64_t seed, int64_t index);

// The device of the model's weights, where its samples are made (the CPU for a model without weights).
torch::Device model_device(Denoiser& model);

struct SamplingJob {
  int64_t n = 0;             // samples in the whole job
  int64_t batch = 1;         // samples per sampler call
  uint64_t seed = 0;         // batch k draws from batch_generator(seed, k)
  torch::Tensor latents;     // given initial noise [>= n, ...sample shape]; undefined: drawn per batch
  int64_t class_label = -1;  // class-conditional models: every sample of this class; < 0: drawn per batch
};

// Called once per batch, in order: the index of its first sample in the job and its samples [count, ...] in data
// space (not yet quantized, on the model's device).
using SampleBatchFn = std::function<void(int64_t start, const torch::Tensor& samples)>;

// Makes this process's batches of `job` (every batch without a communicator). Batch k draws its latents (unless
// given), then its class labels (conditional models without a fixed class), then the sampler's fresh noise from
// batch_generator(seed, k). Returns the range of sample indices this process made.
SampleRange run_sampling_job(Denoiser& model, const SamplerConfig& sampler, const SamplingJob& job,
                             const Communicator* communicator, const SampleBatchFn& on_batch);

}  // namespace onestep
