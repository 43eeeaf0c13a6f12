#pragma once
// Samplers: consistency multistep (1-step, 2-step, any sigma list), EDM Heun and Euler for diffusion models.
// [sample] section. Owner: methods (issue 4).
#include "config/config.h"
#include "precond/model.h"

#include <torch/types.h>

#include <vector>

namespace onestep {

struct SamplerConfig {
  std::string kind = "consistency";        // consistency | heun | euler
  std::vector<double> sigmas = {80.0};     // consistency: the sigmas visited (80 = 1 step; {80, 0.821} = 2 steps)
  int64_t steps = 18;                      // heun / euler: number of Karras levels
  double sigma_min = 0.002, sigma_max = 80.0, rho = 7.0;
  bool float64 = false;                    // sampler arithmetic in float64
  static SamplerConfig from_config(const Json& root);  // reads [sample]
  Json to_json() const;
  void validate() const;  // throws onestep::Error naming the bad value
};

// latents: standard normal [N, ...sample_shape]; `generator` drives the fresh noise of multistep sampling.
// Returns x in data space (images in about [-1, 1], not yet quantized). Runs under no_grad, in eval mode.
torch::Tensor run_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                          at::Generator& generator, const torch::Tensor& class_labels = {});

}  // namespace onestep
