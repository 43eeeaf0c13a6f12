#pragma once
// The concrete objectives (SPEC sections 2-4); build_objective() picks one from [objective].method.
#include "objectives/objective.h"
#include "schedules/schedules.h"

#include <functional>
#include <string>
#include <vector>

namespace onestep {

// EDM diffusion loss (EDM section 5): ln sigma ~ N(p_mean, p_std^2), weight (s^2 + sd^2) / (s sd)^2,
// lambda ||D(y + s n, s) - y||^2 with the plain EDM scalings.
// EDM eq. 8 / table 1: lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2.
torch::Tensor edm_loss_weight(const torch::Tensor& sigma, double sigma_data);

struct EdmObjectiveConfig {
  double p_mean = -1.2, p_std = 1.2;
  // single_sample (EDM: the target is y) | batch_posterior (E[y | x] over the batch; objective_util.h)
  std::string target_estimate = "single_sample";
};
class EdmObjective : public Objective {
 public:
  explicit EdmObjective(EdmObjectiveConfig config) : config_(config) {}
  std::string name() const override { return "edm"; }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  Json to_json() const override;

 private:
  EdmObjectiveConfig config_;
};

// The original CT's EMA teacher theta^- <- mu(k) theta^- + (1 - mu(k)) theta (Song et al. 2023, CT algorithm).
class EmaTeacher {
 public:
  void update(Denoiser& model, double decay);  // first call copies the weights
  // Runs `fn` with the teacher weights loaded into `model`, then puts the student weights back.
  torch::Tensor evaluate(Denoiser& model, const std::function<torch::Tensor()>& fn);
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  void load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

 private:
  std::vector<std::pair<std::string, torch::Tensor>> weights_;  // by parameter name
};

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

// ECT (Geng et al. 2024): continuous t, r = mapping(t, stage), weight 1/(t - r) (or its square), pseudo-Huber with c.
struct EctObjectiveConfig {
  double p_mean = -1.1, p_std = 2.0;
  EctMapping mapping;
  double huber_c = 0.0;  // CIFAR-10: 0; ImageNet64: 0.06
  // inverse_dt: ECT's w = 1 / (t - r). inverse_dt_squared: 1 / (t - r)^2, not in the paper: with a c far above
  // the differences (the squared loss, |d|^2 / 2c) it makes the loss ~ |df/dt|^2 / 2c at every t, as 1 / (t - r)
  // does for the plain norm (c = 0); 1 / (t - r) would leave it ~ (t - r) |df/dt|^2, shrinking where dt is small.
  // snrpk: ECT's ImageNet-64 weight (t^2 + sigma_data^2) / (t sigma_data)^2 = 1/t^2 + 1/sigma_data^2 (locuslab/ect
  // branch imgnet, training/loss.py snrplusk_wt), there without any 1 / (t - r) factor.
  std::string weighting = "inverse_dt";
  // single_sample (the paper: y + r eps) | batch_posterior (objective_util.h; not in the paper)
  std::string target_estimate = "single_sample";
};
class EctObjective : public Objective {
 public:
  explicit EctObjective(EctObjectiveConfig config) : config_(std::move(config)) {}
  std::string name() const override { return "ect"; }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  Json to_json() const override;

 private:
  EctObjectiveConfig config_;
};

}  // namespace onestep
