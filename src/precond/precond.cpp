#include "core/error.h"
#include "precond/model.h"

namespace onestep {

PrecondConfig PrecondConfig::from_config(const Json& root) {
  SectionReader r(root, "precond");
  PrecondConfig c;
  c.sigma_data = r.get_float("sigma_data", c.sigma_data);
  c.sigma_min = r.get_float("sigma_min", c.sigma_min);
  c.train_scalings = r.get_enum("train_scalings", c.train_scalings);
  c.sample_scalings = r.get_enum("sample_scalings", c.sample_scalings);
  c.parameterization = r.get_enum("parameterization", c.parameterization);
  r.finish();
  require(c.sigma_data > 0, "config: precond.sigma_data must be > 0, got ", c.sigma_data);
  require(c.sigma_min > 0, "config: precond.sigma_min must be > 0, got ", c.sigma_min);
  return c;
}

Json PrecondConfig::to_json() const {
  Json j{{"sigma_data", sigma_data},
         {"sigma_min", sigma_min},
         {"train_scalings", enum_name(train_scalings)},
         {"sample_scalings", enum_name(sample_scalings)}};
  // Absent for EDM models, as in the files written before the key existed.
  if (parameterization != Parameterization::Edm) j["parameterization"] = parameterization_name(parameterization);
  return j;
}

ScalingCoefficients scaling_coefficients(const torch::Tensor& sigma, const PrecondConfig& config, Scalings scalings) {
  const double sd = config.sigma_data;
  const double sd2 = sd * sd;
  ScalingCoefficients k;
  torch::Tensor norm = (sigma.square() + sd2).sqrt();  // sqrt(sigma^2 + sigma_data^2)
  k.c_in = 1 / norm;
  k.c_noise = sigma.log() / 4;
  if (scalings == Scalings::Edm) {
    k.c_skip = sd2 / (sigma.square() + sd2);
    k.c_out = sigma * sd / norm;
  } else {
    // sigma_min rounded to sigma's dtype first, so that sigma == sigma_min gives a difference of exactly 0, hence
    // c_skip = sd^2 / sd^2 = 1 and c_out = 0 exactly, and f(x, sigma_min) == x bit for bit (CM appendix C).
    torch::Tensor shifted = sigma - torch::full_like(sigma, config.sigma_min);
    k.c_skip = sd2 / (shifted.square() + sd2);
    k.c_out = shifted * sd / norm;
  }
  return k;
}

}  // namespace onestep
