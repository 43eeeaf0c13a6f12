#include "samplers/sampler.h"

#include "core/error.h"

namespace onestep {

torch::Tensor run_consistency_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                                      at::Generator& generator, const torch::Tensor& class_labels);
torch::Tensor run_edm_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                              const torch::Tensor& class_labels);

torch::Tensor run_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                          at::Generator& generator, const torch::Tensor& class_labels) {
  require(latents.defined() && latents.dim() >= 2 && latents.size(0) > 0, "sampler needs latents [N, ...]");
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  torch::Tensor out;
  try {
    out = config.kind == "consistency" ? run_consistency_sampler(model, config, latents, generator, class_labels)
                                       : run_edm_sampler(model, config, latents, class_labels);
  } catch (...) {
    model->train(was_training);
    throw;
  }
  model->train(was_training);
  return out;
}

}  // namespace onestep
