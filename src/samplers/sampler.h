#pragma once
// Samplers: consistency multistep (1-step, 2-step, any sigma list), EDM Heun and Euler for diffusion models.
// [sample] section; the formulas and their sources are in docs/methods.md section 4.
#include "config/config.h"
#include "precond/model.h"

#include <torch/types.h>

#include <vector>

namespace onestep {

// sample.kind: the consistency sampler (or the few-step sampler of a TrigFlow / MeanFlow model), EDM's Heun or Euler.
enum class SamplerKind { Consistency, Heun, Euler };
template <>
struct EnumTable<SamplerKind> {
  static constexpr EnumNames<SamplerKind, 3> names{
      {{SamplerKind::Consistency, "consistency"}, {SamplerKind::Heun, "heun"}, {SamplerKind::Euler, "euler"}}};
};
// sample.renoise (SamplerConfig::renoise says what each is).
enum class Renoise { Auto, Ict, Ect };
template <>
struct EnumTable<Renoise> {
  static constexpr EnumNames<Renoise, 3> names{{{Renoise::Auto, "auto"}, {Renoise::Ict, "ict"}, {Renoise::Ect, "ect"}}};
};

struct SamplerConfig {
  SamplerKind kind = SamplerKind::Consistency;
  std::vector<double> sigmas = {80.0};     // consistency: the sigmas visited (80 = 1 step; {80, 0.821} = 2 steps)
  int64_t steps = 18;                      // heun / euler: number of Karras levels
  double sigma_min = 0.002, sigma_max = 80.0, rho = 7.0;
  // Sampler arithmetic (x, the ODE steps, the re-noising) in float64, as EDM's sampler (edm/generate.py:35-62) and
  // ECT's (ct_training_loop.py:86-96) do; the network and its preconditioning run in float32 either way.
  bool float64 = true;
  // Re-noising of multistep consistency sampling, x + a z' before evaluating at the next sigma s:
  // "ict": a = sqrt(s^2 - sigma_min^2) (CM algorithm 1, iCT); "ect": a = s (ECT's generator_fn,
  // ct_training_loop.py:96); "auto": as the method the model was trained with (DenoiserImpl::trained_with: "ect" ->
  // ect, else ict).
  Renoise renoise = Renoise::Auto;
  // Consistency sampler: clamp every denoised output to [-1, 1] before re-noising, as the consistency-model
  // release samples (openai/consistency_models scripts/image_sample.py clip_denoised = True, karras_sample's
  // denoiser); recorded by tools/convert_openai_cm.py. Off by default (iCT and ECT describe no clamping); Heun and Euler
  // do not read it.
  bool clip_denoised = false;
  static SamplerConfig from_config(const Json& root);  // reads [sample]
  Json to_json() const;
  void validate() const;  // throws onestep::Error naming the bad value
};

// The re-noising rule `config` gives for `model`: Ict or Ect (resolves Auto).
Renoise resolved_renoise(const SamplerConfig& config, const DenoiserImpl& model);

// latents: standard normal [N, ...sample_shape]; `generator` drives the fresh noise of multistep sampling.
// Returns x in data space (images in about [-1, 1], not yet quantized). Runs under no_grad, in eval mode.
torch::Tensor run_sampler(Denoiser& model, const SamplerConfig& config, const torch::Tensor& latents,
                          at::Generator& generator, const torch::Tensor& class_labels = {});

// The one "steps -> sampler" rule of `sample`, `eval` and the training-time evaluation: the consistency sampler takes
// 1 step, {sigma_max}, or 2, {sigma_max, sigma_mid} (iCT's and ECT's 1- and 2-step samplers; longer schedules are
// listed in `sigmas` instead); Heun and Euler take `steps` >= 2 Karras levels from sigma_max (sigma_mid unused).
// Returns `sampler` with its levels set, validated.
SamplerConfig with_steps(SamplerConfig sampler, int64_t steps, double sigma_mid);
// The [sample] section of `root` with `steps` (with_steps).
SamplerConfig sampler_for_steps(const Json& root, int64_t steps, double sigma_mid);

}  // namespace onestep
