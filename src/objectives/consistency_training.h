#pragma once
// Consistency training on Karras levels: iCT (Song & Dhariwal 2023) and, with its changes reverted, the original
// CT (Song et al. 2023). docs/methods.md sections 5-6.
#include "objectives/ema_teacher.h"
#include "objectives/objective.h"

#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

// Consistency training on Karras levels: iCT by default; every one of iCT's changes can be switched back to the
// original CT (method = "ct" sets all of them to the original's values).
struct ConsistencyTrainingConfig {
  std::string method = "ict";
  double sigma_min = 0.002, sigma_max = 80.0, rho = 7.0;
  std::string curriculum = "doubling";  // doubling (iCT) | sqrt (CT)
  int64_t s0 = 10, s1 = 1280;           // CT: 2, 150
  std::string index = "lognormal";      // lognormal (iCT) | uniform (CT)
  double p_mean = -1.1, p_std = 2.0;
  std::string metric = "pseudo_huber";  // pseudo_huber (iCT) | l2 (CT's squared L2, standing in for LPIPS)
  double huber_c = -1.0;                // < 0: 0.00054 sqrt(d)
  std::string weighting = "inverse_dt"; // inverse_dt (iCT) | uniform (CT)
  std::string teacher = "current";      // current (iCT: stop_grad of the current weights) | ema (CT)
  double mu0 = 0.9;                     // CT teacher EMA: mu(k) = exp(s0 ln mu0 / N(k))
  // paper: mu(k) = exp(s0 ln mu0 / N(k)) (CM appendix C); code: exp(s0 ln mu0 / (N(k) - 1)), as the reference
  // divides by the level count before its "+ 1" (consistency_models_cifar10 jcm/losses.py:916-927).
  std::string teacher_decay = "paper";
  // single_sample (the papers: y + sigma_i n) | batch_posterior (objective_util.h; not in the papers)
  std::string target_estimate = "single_sample";
  static ConsistencyTrainingConfig defaults_for(const std::string& method);
};
class ConsistencyTrainingObjective : public Objective {
 public:
  ConsistencyTrainingObjective(ConsistencyTrainingConfig config, std::vector<int64_t> sample_shape);
  std::string name() const override { return config_.method; }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  void after_step(Denoiser& model, const TrainProgress& progress) override;
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() override { return teacher_.state_tensors(); }
  void load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& t) override {
    teacher_.load_state_tensors(t);
  }
  Json to_json() const override;
  int64_t num_levels(const TrainProgress& progress) const;
  double teacher_decay(const TrainProgress& progress) const;  // mu(k) of original CT's EMA teacher
  double huber_c() const { return huber_c_; }

 private:
  ConsistencyTrainingConfig config_;
  double huber_c_;
  EmaTeacher teacher_;
};

}  // namespace onestep
