// EDM's deterministic sampler (EDM algorithm 1): Heun steps on the probability-flow ODE dx/dt = (x - D(x, t)) / t
// over Karras levels from sigma_max down to sigma_min, then to 0; the step to 0 is a plain Euler step.
// Diffusion models are trained with the plain EDM scalings, so they are always evaluated with them here.
#include "core/error.h"
#include "samplers/sampler.h"
#include "schedules/schedules.h"

namespace onestep {

std::vector<double> edm_sampler_steps(const SamplerConfig& config) {
  std::vector<double> t = karras_sigmas(config.steps, config.sigma_min, config.sigma_max, config.rho);
  std::reverse(t.begin(), t.end());
  t.push_back(0.0);
  return t;
}

torch::Tensor run_edm_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                              const torch::Tensor& class_labels) {
  require(config.kind != SamplerKind::Consistency, "run_edm_sampler: the consistency sampler is not an ODE solver");
  const auto dtype = config.float64 ? torch::kFloat64 : torch::kFloat32;
  const int64_t n = latents.size(0);
  auto denoise = [&](const torch::Tensor& x, double sigma) {
    auto s = torch::full({n}, sigma, torch::TensorOptions().dtype(torch::kFloat32).device(x.device()));
    return model->forward(x.to(torch::kFloat32), s, Scalings::Edm, class_labels).to(dtype);
  };
  const std::vector<double> t = edm_sampler_steps(config);
  torch::Tensor x = latents.to(dtype) * t[0];
  for (size_t i = 0; i + 1 < t.size(); ++i) {
    const torch::Tensor d = (x - denoise(x, t[i])) / t[i];
    torch::Tensor next = x + (t[i + 1] - t[i]) * d;
    if (config.kind == SamplerKind::Heun && t[i + 1] > 0) {
      const torch::Tensor d2 = (next - denoise(next, t[i + 1])) / t[i + 1];
      next = x + (t[i + 1] - t[i]) * (0.5 * d + 0.5 * d2);
    }
    x = next;
  }
  return x.to(torch::kFloat32);
}

}  // namespace onestep
