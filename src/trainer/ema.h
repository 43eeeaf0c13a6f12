#pragma once
// Exponential moving averages of the weights; samples and evaluations use them. Two rules:
//  - fixed per-step beta (ECT 0.9999, iCT 0.99993; docs/methods.md sections 6-8);
//  - EDM's half-life in images with ramp-up (docs/methods.md section 3): beta = 0.5^(batch / h),
//    h = min(half_life_images, ramp * images_seen) when ramp > 0;
//  - EDM2's power-function profile of relative std power_std (trainer/phema.h, docs/methods.md section 13):
//    beta = (1 - batch / t)^(gamma + 1), t the images seen after the step.
// Several are kept at once; each is a full copy of the model with its own name ("0.9999", "hl0.5").
#include "precond/model.h"

#include <string>
#include <vector>

namespace onestep {

struct EmaRule {
  bool half_life = false;
  double beta = 0.9999;         // fixed rule
  double half_life_mimg = 0.5;  // half-life rule, in millions of images
  double ramp = 0.05;           // half-life rule; 0 = no ramp-up
  double power_std = 0;         // > 0: EDM2's power-function rule with this relative std (takes precedence)
  // "0.9999", "hl0.5" or "phema0.05": the checkpoint prefix is "ema.<name>.".
  std::string name() const;
  // beta for a step of `batch` images taken when `images_seen` images had been seen before it.
  double beta_for(int64_t batch, int64_t images_seen) const;
};

class Ema {
 public:
  // Starts as a copy of `model` (same architecture, weights copied).
  Ema(EmaRule rule, Denoiser& model);
  const EmaRule& rule() const { return rule_; }
  std::string name() const { return rule_.name(); }
  Denoiser& model() { return model_; }
  // ema <- beta ema + (1 - beta) model, for parameters; buffers are copied.
  void update(Denoiser& model, int64_t batch, int64_t images_seen);
  void update_with_beta(Denoiser& model, double beta);

 private:
  EmaRule rule_;
  Denoiser model_{nullptr};
};

// A copy of `model` with its own storage (built from its configuration, weights copied).
Denoiser clone_model(Denoiser& model);

}  // namespace onestep
