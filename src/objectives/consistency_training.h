#pragma once
// Consistency training on Karras levels: iCT (Song & Dhariwal 2023) and, with its changes reverted, the original
// CT (Song et al. 2023). docs/methods.md sections 5-6.
#include "objectives/ema_teacher.h"
#include "objectives/objective.h"
#include "objectives/objective_util.h"

#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

// The choices iCT changed from the original CT (iCT table 1); the first of each pair is iCT's.
enum class CtCurriculum { Doubling, Sqrt };   // N(k): iCT's doubling | CT's square-root curriculum
enum class CtIndex { LogNormal, Uniform };    // the level pair drawn: iCT's lognormal | CT's uniform index
enum class CtMetric { PseudoHuber, L2 };      // iCT's pseudo-Huber | CT's squared L2, standing in for LPIPS
enum class CtWeighting { InverseDt, Uniform };  // lambda: iCT's 1 / (sigma_{i+1} - sigma_i) | CT's 1
enum class CtTeacher { Current, Ema };        // iCT: stop_grad of the current weights | CT's EMA teacher
enum class CtTeacherDecay { Paper, Code };    // the EMA teacher's mu(k) as the paper or the code writes it
template <>
struct EnumTable<CtCurriculum> {
  static constexpr EnumNames<CtCurriculum, 2> names{
      {{CtCurriculum::Doubling, "doubling"}, {CtCurriculum::Sqrt, "sqrt"}}};
};
template <>
struct EnumTable<CtIndex> {
  static constexpr EnumNames<CtIndex, 2> names{{{CtIndex::LogNormal, "lognormal"}, {CtIndex::Uniform, "uniform"}}};
};
template <>
struct EnumTable<CtMetric> {
  static constexpr EnumNames<CtMetric, 2> names{{{CtMetric::PseudoHuber, "pseudo_huber"}, {CtMetric::L2, "l2"}}};
};
template <>
struct EnumTable<CtWeighting> {
  static constexpr EnumNames<CtWeighting, 2> names{
      {{CtWeighting::InverseDt, "inverse_dt"}, {CtWeighting::Uniform, "uniform"}}};
};
template <>
struct EnumTable<CtTeacher> {
  static constexpr EnumNames<CtTeacher, 2> names{{{CtTeacher::Current, "current"}, {CtTeacher::Ema, "ema"}}};
};
template <>
struct EnumTable<CtTeacherDecay> {
  static constexpr EnumNames<CtTeacherDecay, 2> names{
      {{CtTeacherDecay::Paper, "paper"}, {CtTeacherDecay::Code, "code"}}};
};

// Consistency training on Karras levels: iCT by default; every one of iCT's changes can be switched back to the
// original CT (method = "ct" sets all of them to the original's values).
struct ConsistencyTrainingConfig {
  ObjectiveMethod method = ObjectiveMethod::Ict;  // Ict | Ct
  double sigma_min = 0.002, sigma_max = 80.0, rho = 7.0;
  CtCurriculum curriculum = CtCurriculum::Doubling;
  int64_t s0 = 10, s1 = 1280;  // CT: 2, 150
  CtIndex index = CtIndex::LogNormal;
  double p_mean = -1.1, p_std = 2.0;
  CtMetric metric = CtMetric::PseudoHuber;
  double huber_c = -1.0;  // < 0: 0.00054 sqrt(d)
  CtWeighting weighting = CtWeighting::InverseDt;
  CtTeacher teacher = CtTeacher::Current;
  double mu0 = 0.9;  // CT teacher EMA: mu(k) = exp(s0 ln mu0 / N(k))
  // paper: mu(k) = exp(s0 ln mu0 / N(k)) (CM appendix C); code: exp(s0 ln mu0 / (N(k) - 1)), as the reference
  // divides by the level count before its "+ 1" (consistency_models_cifar10 jcm/losses.py:916-927).
  CtTeacherDecay teacher_decay = CtTeacherDecay::Paper;
  // single_sample (the papers: y + sigma_i n) | batch_posterior (objective_util.h; not in the papers)
  TargetEstimate target_estimate = TargetEstimate::SingleSample;
  // > 0 with batch_posterior: the posterior also runs over the last posterior_bank training rows (PosteriorBank)
  int64_t posterior_bank = 0;
  static ConsistencyTrainingConfig defaults_for(ObjectiveMethod method);  // Ict | Ct
};
class ConsistencyTrainingObjective : public Objective {
 public:
  ConsistencyTrainingObjective(ConsistencyTrainingConfig config, std::vector<int64_t> sample_shape);
  std::string name() const override { return enum_name(config_.method); }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  void after_step(Denoiser& model, const TrainProgress& progress) override;
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() override;
  void load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& t) override {
    teacher_.load_state_tensors(bank_.load_state_tensors(t));
  }
  std::string single_process_reason() const override { return posterior_bank_reason(bank_); }
  Json to_json() const override;
  int64_t num_levels(const TrainProgress& progress) const;
  double teacher_decay(const TrainProgress& progress) const;  // mu(k) of original CT's EMA teacher
  double huber_c() const { return huber_c_; }

 private:
  ConsistencyTrainingConfig config_;
  double huber_c_;
  EmaTeacher teacher_;
  PosteriorBank bank_;
};

}  // namespace onestep
