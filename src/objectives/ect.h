#pragma once
// ECT (Geng et al. 2024): consistency tuning with a continuous t and a shrinking dt = t - r (docs/methods.md
// section 7).
#include "objectives/objective.h"
#include "objectives/objective_util.h"
#include "schedules/schedules.h"

#include <string>

namespace onestep {

// objective.weighting of ECT (EctObjectiveConfig::weighting says what each is).
enum class EctWeighting { InverseDt, InverseDtSquared, SnrPlusK };
template <>
struct EnumTable<EctWeighting> {
  static constexpr EnumNames<EctWeighting, 3> names{{{EctWeighting::InverseDt, "inverse_dt"},
                                                     {EctWeighting::InverseDtSquared, "inverse_dt_squared"},
                                                     {EctWeighting::SnrPlusK, "snrpk"}}};
};
// objective.stage_exponent: e in q^e of the mapping (EctMapping::paper_exponent).
enum class EctStageExponent { StagePlusOne, Stage };
template <>
struct EnumTable<EctStageExponent> {
  static constexpr EnumNames<EctStageExponent, 2> names{
      {{EctStageExponent::StagePlusOne, "stage_plus_one"}, {EctStageExponent::Stage, "stage"}}};
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
  // branch imgnet, training/loss.py snrplusk_wt), there without any 1 / (t - r) factor (docs/methods.md section 14).
  EctWeighting weighting = EctWeighting::InverseDt;
  // single_sample (the paper: y + r eps) | batch_posterior (objective_util.h; not in the paper)
  TargetEstimate target_estimate = TargetEstimate::SingleSample;
  // > 0 with batch_posterior: the posterior also runs over the last posterior_bank training rows (PosteriorBank)
  int64_t posterior_bank = 0;
  // With target_estimate = "teacher": the frozen EDM model whose denoiser gives D in x_r = D + (r / t) (x_t - D),
  // the Euler step of the teacher's probability-flow ODE (consistency distillation's target; docs/methods.md
  // section 7). Usually the file the run starts from (--init).
  std::string teacher;
};
class EctObjective : public Objective {
 public:
  explicit EctObjective(EctObjectiveConfig config);
  std::string name() const override { return "ect"; }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  Json to_json() const override;
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() override { return bank_.state_tensors(); }
  void load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& t) override {
    require_no_other_state(bank_.load_state_tensors(t));
  }
  std::string single_process_reason() const override { return posterior_bank_reason(bank_); }
  const Denoiser& teacher() const { return teacher_; }  // target_estimate = "teacher"; empty otherwise

 private:
  EctObjectiveConfig config_;
  PosteriorBank bank_;
  Denoiser teacher_{nullptr};  // target_estimate = "teacher"
};

}  // namespace onestep
