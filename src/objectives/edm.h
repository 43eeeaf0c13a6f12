#pragma once
// EDM's diffusion pretraining loss (EDM section 5; docs/methods.md section 3).
#include "objectives/objective.h"
#include "objectives/objective_util.h"

#include <string>

namespace onestep {

// EDM diffusion loss (EDM section 5): ln sigma ~ N(p_mean, p_std^2), weight (s^2 + sd^2) / (s sd)^2,
// lambda ||D(y + s n, s) - y||^2 with the plain EDM scalings.
// EDM eq. 8 / table 1: lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2.
torch::Tensor edm_loss_weight(const torch::Tensor& sigma, double sigma_data);

struct EdmObjectiveConfig {
  double p_mean = -1.2, p_std = 1.2;
  // single_sample (EDM: the target is y) | batch_posterior (E[y | x] over the batch; objective_util.h)
  TargetEstimate target_estimate = TargetEstimate::SingleSample;
  // > 0 with batch_posterior: the posterior also runs over the last posterior_bank training rows (PosteriorBank)
  int64_t posterior_bank = 0;
};
class EdmObjective : public Objective {
 public:
  explicit EdmObjective(EdmObjectiveConfig config) : config_(config), bank_(config.posterior_bank) {}
  std::string name() const override { return "edm"; }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  Json to_json() const override;
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() override { return bank_.state_tensors(); }
  void load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& t) override {
    require_no_other_state(bank_.load_state_tensors(t));
  }
  std::string single_process_reason() const override { return posterior_bank_reason(bank_); }

 private:
  EdmObjectiveConfig config_;
  PosteriorBank bank_;
};

}  // namespace onestep
