#pragma once
// The sample grids a run writes while it trains (train.sample_every): samples/step-<8 digits>.png for images,
// .npy for points (in the data's own units), and the same picture in TensorBoard. The latents are fixed by the
// seed, so that grids of different steps compare; multistep samplers draw fresh noise from a generator of their
// own, so that writing a grid never disturbs training.
#include "precond/model.h"
#include "samplers/sampler.h"

#include <cstdint>
#include <filesystem>

namespace onestep {

class EventWriter;

struct SampleGridSettings {
  SamplerConfig sampler;
  int64_t count = 64;  // train.sample_count
  int64_t seed = 0;    // train.seed
};

// Samples `settings.count` images (or points) from `model` on `device` and writes them for `step` into
// `samples_dir` (and `events`, when given). Leaves `model` in eval mode.
void write_sample_grid(Denoiser& model, const SampleGridSettings& settings, const torch::Device& device, int64_t step,
                       const std::filesystem::path& samples_dir, EventWriter* events);

}  // namespace onestep
