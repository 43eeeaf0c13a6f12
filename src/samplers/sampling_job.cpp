#include "samplers/sampling_job.h"

#include "core/error.h"
#include "core/random.h"

#include <algorithm>

namespace onestep {

at::Generator batch_generator(uint64_t seed, int64_t index) {
  require(index >= 0, "batch_generator: negative batch index ", index);
  return make_generator(torch::kCPU, index == 0 ? seed : mix_seed(seed ^ 0xBA7C4ULL, static_cast<uint64_t>(index)));
}

torch::Device model_device(Denoiser& model) {
  const auto params = model->parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

SampleRange run_sampling_job(Denoiser& model, const SamplerConfig& sampler, const SamplingJob& job,
                             const Communicator* communicator, const SampleBatchFn& on_batch) {
  require(job.n >= 0 && job.batch >= 1, "sampling: need n >= 0 samples and a positive batch, got n ", job.n,
          ", batch ", job.batch);
  require(!job.latents.defined() || job.latents.size(0) >= job.n, "sampling: ", job.n, " samples but only ",
          job.latents.defined() ? job.latents.size(0) : 0, " latents");
  const torch::Device device = model_device(model);
  const std::vector<int64_t> shape = model->sample_shape();
  const int64_t classes = model->label_dim();
  const SampleRange range = own_samples(communicator, job.n, job.batch);
  for (int64_t start = range.begin; start < range.end; start += job.batch) {
    const int64_t count = std::min(range.end, start + job.batch) - start;
    auto generator = batch_generator(job.seed, start / job.batch);
    std::vector<int64_t> full = {count};
    full.insert(full.end(), shape.begin(), shape.end());
    const torch::Tensor z = job.latents.defined()
                                ? job.latents.slice(0, start, start + count)
                                : random_normal(full, generator, torch::kCPU, torch::kFloat32, "sampling latents");
    torch::Tensor labels;
    if (classes > 0)
      labels = job.class_label >= 0 ? torch::full({count}, job.class_label, torch::kLong)
                                    : random_integers(classes, {count}, generator, torch::kCPU, "sampling labels");
    on_batch(start, run_sampler(model, sampler, z.to(device), generator,
                                labels.defined() ? labels.to(device) : labels));
  }
  return range;
}

}  // namespace onestep
