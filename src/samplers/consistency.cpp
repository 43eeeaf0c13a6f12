// Consistency multistep sampling (CM algorithm 1; iCT/ECT 1- and 2-step samplers, docs/methods.md section 4):
// x = f(sigma_0 z, sigma_0); for each next sigma s: x += a z', x = f(x, s), with a = sqrt(s^2 - sigma_min^2) as CM
// algorithm 1 and iCT write it, or a = s as ECT's sampler does (ct_training_loop.py:96), following the method the
// model was trained with unless [sample].renoise says otherwise. [sample].clip_denoised clamps each f to [-1, 1] as
// the consistency-model release does (karras_diffusion.py karras_sample).
#include "core/error.h"
#include "core/random.h"
#include "samplers/sampler.h"

#include <cmath>

namespace onestep {

Renoise resolved_renoise(const SamplerConfig& config, const DenoiserImpl& model) {
  if (config.renoise != Renoise::Auto) return config.renoise;
  // The rules are named for the methods that use them: ECT's for a model trained with "ect", CM's for any other
  // (ict, ct, edm, or a converted file that records none).
  return enum_from_name<Renoise>(model.trained_with()) == Renoise::Ect ? Renoise::Ect : Renoise::Ict;
}

torch::Tensor run_consistency_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                                      at::Generator& generator, const torch::Tensor& class_labels) {
  require(!config.sigmas.empty(), "consistency sampler needs at least one sigma");
  const double sigma_min = model->precond().sigma_min;
  const auto dtype = config.float64 ? torch::kFloat64 : torch::kFloat32;
  const int64_t n = latents.size(0);
  const bool ect_renoise = resolved_renoise(config, *model) == Renoise::Ect;
  auto denoise = [&](const torch::Tensor& x, double sigma) {
    auto s = torch::full({n}, sigma, torch::TensorOptions().dtype(torch::kFloat32).device(x.device()));
    torch::Tensor d = model->forward(x.to(torch::kFloat32), s, model->precond().sample_scalings, class_labels);
    return (config.clip_denoised ? d.clamp(-1, 1) : d).to(dtype);
  };
  torch::Tensor x = denoise(latents.to(dtype) * config.sigmas[0], config.sigmas[0]);
  for (size_t i = 1; i < config.sigmas.size(); ++i) {
    const double s = config.sigmas[i];
    require(s > sigma_min, "consistency sampler: sigma ", s, " must exceed sigma_min ", sigma_min);
    // Drawn on the generator's device (a CPU generator gives the same samples on every device), then moved.
    const torch::Tensor z = random_normal(latents.sizes(), generator, generator_device(generator), dtype,
                                          "consistency sampler noise")
                                .to(latents.device());
    x = x + (ect_renoise ? s : std::sqrt(s * s - sigma_min * sigma_min)) * z;
    x = denoise(x, s);
  }
  return x.to(torch::kFloat32);
}

}  // namespace onestep
