// ECT (Geng et al. 2024): consistency tuning with a continuous t and a shrinking dt = t - r (docs/methods.md
// section 7).
#include "objectives/ect.h"

#include "core/random.h"
#include "objectives/objective_util.h"

namespace onestep {

EctObjective::EctObjective(EctObjectiveConfig config) : config_(std::move(config)), bank_(config_.posterior_bank) {
  if (config_.target_estimate == TargetEstimate::Teacher)
    teacher_ = load_frozen_teacher(config_.teacher, "objective.teacher");
}

LossOutput EctObjective::compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                                      at::Generator& generator) {
  const torch::Tensor& y = batch.x;
  const int64_t b = y.size(0);
  const int64_t stage = config_.mapping.stage(progress.images_seen);
  // Per-sample draws for the whole global batch, this process's rows kept (data-parallel runs, dataset.h).
  const int64_t global = batch.global_batch();
  const torch::Tensor t =
      batch.own_rows(sample_lognormal(global, config_.p_mean, config_.p_std, generator, y.device()));
  const torch::Tensor r = config_.mapping.r(t, stage);
  const torch::Tensor eps =
      batch.own_rows(random_normal(batch.global_shape(), generator, y.device(), torch::kFloat32, "ECT noise"));
  std::vector<int64_t> shape(static_cast<size_t>(y.dim()), 1);
  shape[0] = b;
  const torch::Tensor labels = one_hot_labels(model, batch);
  const Scalings scalings = model->precond().train_scalings;
  const torch::Tensor at_zero = (r == 0).reshape(shape);

  const torch::Tensor x_t = y + t.reshape(shape) * eps;
  // The papers' target input y + r eps, or the same Euler step with the batch's posterior mean (objective_util.h) or
  // with the frozen teacher's denoiser (consistency distillation's Euler step).
  const bool single_sample = config_.target_estimate == TargetEstimate::SingleSample;
  const torch::Tensor denoised = config_.target_estimate == TargetEstimate::Teacher
                                     ? teacher_denoised(teacher_, x_t, t, labels)
                                     : clean_estimate(config_.target_estimate, batch, x_t, t, labels, &bank_);
  const torch::Tensor x_r = single_sample ? y + r.reshape(shape) * eps : euler_step_to(x_t, denoised, t, r);

  SharedDropoutState dropout(y.device());
  const torch::Tensor student = model->forward(x_t, t, scalings, labels);
  dropout.rewind();
  const torch::Tensor teacher = consistency_target(model, x_r, r, scalings, labels, denoised, dropout);
  dropout.restore();

  torch::Tensor weight;
  switch (config_.weighting) {
    case EctWeighting::SnrPlusK: {  // ECT ImageNet (loss.py snrplusk_wt): SNR(t) + 1 / sigma_data^2
      const double sd = model->precond().sigma_data;
      weight = (t.square() + sd * sd) / (t * sd).square();
      break;
    }
    case EctWeighting::InverseDt: weight = 1.0 / (t - r); break;
    case EctWeighting::InverseDtSquared: weight = 1.0 / (t - r).square(); break;
  }
  const torch::Tensor distance = pseudo_huber_per_sample(student - teacher, config_.huber_c);
  const torch::Tensor loss = (weight * distance).mean();
  return {loss, Json{{"stage", stage},
                     {"mean_weight", stat_value(weight.mean())},
                     {"mean_dt", stat_value((t - r).mean())},
                     {"frac_r_zero", stat_value(at_zero.to(torch::kFloat32).mean())}}};
}

Json EctObjective::to_json() const {
  const auto& m = config_.mapping;
  Json j{{"method", "ect"},
         {"p_mean", config_.p_mean},
         {"p_std", config_.p_std},
         {"mapping", enum_name(m.kind)},
         {"q", m.q},
         {"stage_length", m.stage_length},
         {"stage_exponent",
          enum_name(m.paper_exponent ? EctStageExponent::Stage : EctStageExponent::StagePlusOne)},
         {"huber_c", config_.huber_c},
         {"weighting", enum_name(config_.weighting)},
         {"target_estimate", enum_name(config_.target_estimate)}};
  if (config_.posterior_bank > 0) j["posterior_bank"] = config_.posterior_bank;
  if (config_.target_estimate == TargetEstimate::Teacher) j["teacher"] = config_.teacher;
  if (m.kind == EctMappingKind::Sigmoid) {  // the const mapping has n(t) = 1 and reads neither
    j["k"] = m.k;
    j["b"] = m.b;
  }
  return j;
}

}  // namespace onestep
