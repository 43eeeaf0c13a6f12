// iCT (Song & Dhariwal 2023) and, with its switches reverted, the original consistency training (Song et al. 2023):
// docs/methods.md sections 5-6.
#include "objectives/consistency_training.h"

#include "core/error.h"
#include "core/random.h"
#include "objectives/objective_util.h"
#include "schedules/schedules.h"

#include <algorithm>

namespace onestep {

ConsistencyTrainingConfig ConsistencyTrainingConfig::defaults_for(ObjectiveMethod method) {
  require(method == ObjectiveMethod::Ict || method == ObjectiveMethod::Ct,
          "consistency training is method ict or ct, not ", enum_name(method));
  ConsistencyTrainingConfig c;
  c.method = method;
  if (method == ObjectiveMethod::Ct) {  // every change of iCT table 1 reverted
    c.curriculum = CtCurriculum::Sqrt;
    c.s0 = 2;
    c.s1 = 150;
    c.index = CtIndex::Uniform;
    c.metric = CtMetric::L2;
    c.weighting = CtWeighting::Uniform;
    c.teacher = CtTeacher::Ema;
  }
  return c;
}

ConsistencyTrainingObjective::ConsistencyTrainingObjective(ConsistencyTrainingConfig config,
                                                           std::vector<int64_t> sample_shape)
    : config_(std::move(config)),
      huber_c_(config_.huber_c >= 0 ? config_.huber_c : default_huber_c(sample_shape)),
      bank_(config_.posterior_bank) {}

std::vector<std::pair<std::string, torch::Tensor>> ConsistencyTrainingObjective::state_tensors() {
  auto tensors = teacher_.state_tensors();
  for (auto& named : bank_.state_tensors()) tensors.push_back(std::move(named));
  return tensors;
}

int64_t ConsistencyTrainingObjective::num_levels(const TrainProgress& progress) const {
  return config_.curriculum == CtCurriculum::Doubling
             ? ict_num_levels(progress.step, progress.total_steps, config_.s0, config_.s1)
             : ct_num_levels(progress.step, progress.total_steps, config_.s0, config_.s1);
}

LossOutput ConsistencyTrainingObjective::compute_loss(Denoiser& model, const Batch& batch,
                                                      const TrainProgress& progress, at::Generator& generator) {
  const torch::Tensor& y = batch.x;
  const int64_t b = y.size(0);
  const int64_t n = num_levels(progress);
  const std::vector<double> sigmas = karras_sigmas(n, config_.sigma_min, config_.sigma_max, config_.rho);
  const std::vector<double> probs = config_.index == CtIndex::LogNormal
                                        ? lognormal_index_probabilities(sigmas, config_.p_mean, config_.p_std)
                                        : uniform_index_probabilities(n);
  // Per-sample draws for the whole global batch, this process's rows kept (data-parallel runs, dataset.h).
  const torch::Tensor index = batch.own_rows(sample_indices(probs, batch.global_batch(), generator, y.device()));
  const torch::Tensor levels = torch::tensor(sigmas, torch::kFloat64).to(y.device());
  const torch::Tensor sigma_lo = levels.index_select(0, index).to(torch::kFloat32);      // sigma_i
  const torch::Tensor sigma_hi = levels.index_select(0, index + 1).to(torch::kFloat32);  // sigma_{i+1}
  const torch::Tensor noise =
      batch.own_rows(random_normal(batch.global_shape(), generator, y.device(), torch::kFloat32, "CT noise"));
  std::vector<int64_t> shape(static_cast<size_t>(y.dim()), 1);
  shape[0] = b;
  const torch::Tensor labels = one_hot_labels(model, batch);
  const Scalings scalings = model->precond().train_scalings;

  const torch::Tensor x_hi = y + sigma_hi.reshape(shape) * noise;
  // The papers' y + sigma_i n, or the same Euler step with the batch's posterior mean (objective_util.h).
  const torch::Tensor x_lo =
      config_.target_estimate == TargetEstimate::BatchPosterior
          ? euler_step_to(x_hi, clean_estimate(config_.target_estimate, batch, x_hi, sigma_hi, labels, &bank_), sigma_hi,
                        sigma_lo)
          : y + sigma_lo.reshape(shape) * noise;

  SharedDropoutState dropout(y.device());
  const torch::Tensor student = model->forward(x_hi, sigma_hi, scalings, labels);
  dropout.rewind();
  auto teacher_forward = [&] {
    torch::NoGradGuard no_grad;
    return model->forward(x_lo, sigma_lo, scalings, labels);
  };
  torch::Tensor teacher =
      config_.teacher == CtTeacher::Ema ? teacher_.evaluate(model, teacher_forward) : teacher_forward();
  dropout.restore();
  teacher = teacher.detach();

  const torch::Tensor diff = student - teacher;
  const torch::Tensor distance =
      config_.metric == CtMetric::PseudoHuber ? pseudo_huber_per_sample(diff, huber_c_) : squared_l2_per_sample(diff);
  const torch::Tensor weight = config_.weighting == CtWeighting::InverseDt ? 1.0 / (sigma_hi - sigma_lo)  // iCT lambda
                                                                           : torch::ones_like(sigma_hi);
  const torch::Tensor loss = (weight * distance).mean();
  return {loss, Json{{"N", n},
                     {"mean_weight", stat_value(weight.mean())},
                     {"mean_dt", stat_value((sigma_hi - sigma_lo).mean())}}};
}

double ConsistencyTrainingObjective::teacher_decay(const TrainProgress& progress) const {
  const int64_t n = num_levels(progress);
  return ct_teacher_decay(config_.teacher_decay == CtTeacherDecay::Code ? n - 1 : n, config_.s0, config_.mu0);
}

void ConsistencyTrainingObjective::after_step(Denoiser& model, const TrainProgress& progress) {
  if (config_.teacher != CtTeacher::Ema) return;
  // mu(k) of the step just taken (k = progress.step - 1), whose N(k) the loss used: CM algorithm 3 updates the
  // teacher before k <- k + 1, and the reference computes both from one step count (jcm/losses.py:999, 1036).
  const TrainProgress taken{std::max<int64_t>(0, progress.step - 1), progress.total_steps, progress.images_seen};
  teacher_.update(model, teacher_decay(taken));
}

Json ConsistencyTrainingObjective::to_json() const {
  // Only the keys this configuration reads (objective_factory.cpp refuses the others), so the effective
  // configuration of a run reads back as it is.
  const auto& c = config_;
  Json j{{"method", enum_name(c.method)},
         {"sigma_min", c.sigma_min},
         {"sigma_max", c.sigma_max},
         {"rho", c.rho},
         {"curriculum", enum_name(c.curriculum)},
         {"s0", c.s0},
         {"s1", c.s1},
         {"index", enum_name(c.index)},
         {"metric", enum_name(c.metric)},
         {"weighting", enum_name(c.weighting)},
         {"teacher", enum_name(c.teacher)},
         {"target_estimate", enum_name(c.target_estimate)}};
  if (c.posterior_bank > 0) j["posterior_bank"] = c.posterior_bank;
  if (c.index == CtIndex::LogNormal) {
    j["p_mean"] = c.p_mean;
    j["p_std"] = c.p_std;
  }
  if (c.metric == CtMetric::PseudoHuber) j["huber_c"] = huber_c_;
  if (c.teacher == CtTeacher::Ema) {
    j["mu0"] = c.mu0;
    j["teacher_decay"] = enum_name(c.teacher_decay);
  }
  return j;
}

}  // namespace onestep
