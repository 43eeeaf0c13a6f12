#include "samplers/sampler.h"

#include "core/error.h"

namespace onestep {

torch::Tensor run_consistency_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                                      at::Generator& generator, const torch::Tensor& class_labels);
torch::Tensor run_edm_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                              const torch::Tensor& class_labels);
// samplers/continuous_time.cpp
torch::Tensor run_trigflow_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                                   at::Generator& generator, const torch::Tensor& class_labels);
torch::Tensor run_meanflow_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                                   const torch::Tensor& class_labels);

namespace {
// The few-step sampler of the model's parameterization (kind "consistency"); the EDM ODE samplers otherwise.
torch::Tensor dispatch_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                               at::Generator& generator, const torch::Tensor& labels) {
  if (config.kind != SamplerKind::Consistency) return run_edm_sampler(model, config, latents, labels);
  switch (model->precond().parameterization) {
    case Parameterization::TrigFlow:
    case Parameterization::TrigFlowEdm: return run_trigflow_sampler(model, config, latents, generator, labels);
    case Parameterization::MeanFlow: return run_meanflow_sampler(model, config, latents, labels);
    default: return run_consistency_sampler(model, config, latents, generator, labels);
  }
}
}  // namespace

torch::Tensor run_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                          at::Generator& generator, const torch::Tensor& class_labels) {
  require(latents.defined() && latents.dim() >= 2 && latents.size(0) > 0, "sampler needs latents [N, ...]");
  // Class labels may come as indices [N] (the CLI) or one-hot floats [N, label_dim] (what the network takes).
  torch::Tensor labels = class_labels;
  if (labels.defined() && !labels.is_floating_point()) {
    require(labels.dim() == 1 && labels.size(0) == latents.size(0), "sampler: class labels must be [N] indices");
    require(model->label_dim() > 0, "sampler: class labels given to an unconditional model");
    require(labels.min().item<int64_t>() >= 0 && labels.max().item<int64_t>() < model->label_dim(),
            "sampler: class label out of range 0..", model->label_dim() - 1);
    labels = torch::one_hot(labels, model->label_dim()).to(torch::kFloat32);
  }
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  torch::Tensor out;
  try {
    out = dispatch_sampler(model, config, latents, generator, labels);
  } catch (...) {
    model->train(was_training);
    throw;
  }
  model->train(was_training);
  return out;
}

}  // namespace onestep
