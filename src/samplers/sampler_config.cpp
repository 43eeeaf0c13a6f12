#include "core/error.h"
#include "samplers/sampler.h"

#include <cmath>
#include <utility>

namespace onestep {

SamplerConfig SamplerConfig::from_config(const Json& root) {
  SamplerConfig c;
  SectionReader reader(root, "sample");
  c.kind = reader.get_enum("kind", c.kind);
  c.sigmas = reader.get_floats("sigmas", c.sigmas);
  c.steps = reader.get_int("steps", c.steps);
  c.sigma_min = reader.get_float("sigma_min", c.sigma_min);
  c.sigma_max = reader.get_float("sigma_max", c.sigma_max);
  c.rho = reader.get_float("rho", c.rho);
  c.float64 = reader.get_bool("float64", c.float64);
  c.renoise = reader.get_enum("renoise", c.renoise);
  c.clip_denoised = reader.get_bool("clip_denoised", c.clip_denoised);
  reader.finish();
  c.validate();
  return c;
}

void SamplerConfig::validate() const {
  const SamplerConfig& c = *this;
  require(!c.sigmas.empty(), "sample.sigmas must not be empty");
  for (size_t i = 0; i < c.sigmas.size(); ++i) {
    require(std::isfinite(c.sigmas[i]) && c.sigmas[i] > 0, "sample.sigmas must be positive and finite, got ",
            c.sigmas[i]);
    require(i == 0 || c.sigmas[i] < c.sigmas[i - 1], "sample.sigmas must be decreasing");
  }
  require(c.steps >= 2, "sample.steps must be >= 2 for heun/euler");
  for (const auto& [name, value] : {std::pair{"sigma_min", c.sigma_min}, {"sigma_max", c.sigma_max}, {"rho", c.rho}})
    require(std::isfinite(value), "sample.", name, " must be a finite number, got ", value);
  require(c.sigma_min > 0 && c.sigma_max > c.sigma_min && c.rho > 0, "sample: need 0 < sigma_min < sigma_max, rho > 0");
}

Json SamplerConfig::to_json() const {
  Json j{{"kind", enum_name(kind)}, {"sigmas", sigmas}, {"steps", steps},      {"sigma_min", sigma_min},
         {"sigma_max", sigma_max},   {"rho", rho},       {"float64", float64},
         {"renoise", enum_name(renoise)}};
  if (clip_denoised) j["clip_denoised"] = true;  // absent when off, as in the files written before the key existed
  return j;
}

SamplerConfig with_steps(SamplerConfig sampler, int64_t steps, double sigma_mid) {
  if (sampler.kind == SamplerKind::Consistency) {
    require(steps == 1 || steps == 2, "the consistency sampler takes 1 or 2 steps, got ", steps,
            "; list the noise levels of longer schedules in [sample].sigmas (onestep sample --sigmas 80,5,0.821)");
    sampler.sigmas = steps == 1 ? std::vector<double>{sampler.sigma_max}
                                : std::vector<double>{sampler.sigma_max, sigma_mid};
  } else {
    require(steps >= 2, "the ", enum_name(sampler.kind),
            " sampler takes 2 or more steps (Karras levels; EDM: 18), got ", steps);
    sampler.steps = steps;
  }
  sampler.validate();
  return sampler;
}

SamplerConfig sampler_for_steps(const Json& root, int64_t steps, double sigma_mid) {
  return with_steps(SamplerConfig::from_config(root), steps, sigma_mid);
}

}  // namespace onestep
