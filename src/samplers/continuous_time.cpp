// Few-step samplers of the continuous-time models, reached through sample.kind = "consistency" when the model's
// parameterization is TrigFlow or MeanFlow (samplers.cpp). [sample].sigmas are EDM noise levels in both, converted
// at the same signal-to-noise ratio (docs/continuous-time.md section 4), so that `onestep eval`'s sigma_max and
// sigma_mid mean the same level for every method:
// - TrigFlow (sCM): t = arctan(sigma / sigma_data); x = f(sigma_data z, t_0), then for each next t:
//   x = f(cos(t) x + sin(t) sigma_data z', t) (sCM section 3 and appendix; FastGen samples the same way).
// - MeanFlow: t = sigma / (1 + sigma); z_{t_0} = t_0 e, then z <- z - (t_i - t_{i+1}) u(z, t_{i+1}, t_i) down to
//   t = 0, deterministic (MeanFlow section 4.1; py-meanflow meanflow/models/meanflow.py:70-79 does the
//   one step from t = 1).
#include "core/error.h"
#include "core/random.h"
#include "precond/meanflow.h"
#include "precond/trigflow.h"
#include "samplers/sampler.h"

#include <cmath>

namespace onestep {

torch::Tensor run_trigflow_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                                   at::Generator& generator, const torch::Tensor& class_labels) {
  const double sd = model->precond().sigma_data;
  const auto dtype = config.float64 ? torch::kFloat64 : torch::kFloat32;
  const int64_t n = latents.size(0);
  auto f = [&](const torch::Tensor& x, double t) {
    const auto tt = torch::full({n}, t, torch::TensorOptions().dtype(torch::kFloat32).device(x.device()));
    return trigflow_consistency(*model, x.to(torch::kFloat32), tt, class_labels).to(dtype);
  };
  // x_{t_max} ~ N(0, sigma_data^2 I): cos(t_max) x_0 is below 1% of it at t_max = arctan(80 / 0.5).
  torch::Tensor x = f(latents.to(dtype) * sd, trigflow_time(config.sigmas[0], sd));
  for (size_t i = 1; i < config.sigmas.size(); ++i) {
    const double t = trigflow_time(config.sigmas[i], sd);
    const torch::Tensor z = random_normal(latents.sizes(), generator, generator_device(generator), dtype,
                                          "TrigFlow sampler noise")
                                .to(latents.device());
    x = f(std::cos(t) * x + std::sin(t) * sd * z, t);
  }
  return x.to(torch::kFloat32);
}

torch::Tensor run_meanflow_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                                   const torch::Tensor& class_labels) {
  const auto dtype = config.float64 ? torch::kFloat64 : torch::kFloat32;
  const int64_t n = latents.size(0);
  std::vector<double> times;
  for (double sigma : config.sigmas) times.push_back(flow_time(sigma));
  times.push_back(0.0);
  // The marginal at t_0 is (1 - t_0) x + t_0 e; t_0 e leaves out the data term, as EDM's samplers start at sigma z.
  torch::Tensor z = latents.to(dtype) * times[0];
  for (size_t i = 0; i + 1 < times.size(); ++i) {
    const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(z.device());
    const torch::Tensor t = torch::full({n}, times[i], options), r = torch::full({n}, times[i + 1], options);
    const torch::Tensor u = meanflow_velocity(*model, z.to(torch::kFloat32), r, t, class_labels).to(dtype);
    z = z - (times[i] - times[i + 1]) * u;
  }
  return z.to(torch::kFloat32);
}

}  // namespace onestep
