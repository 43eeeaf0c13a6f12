// EDM's diffusion pretraining loss (EDM section 5; docs/methods.md section 3).
#include "objectives/edm.h"

#include "core/random.h"
#include "objectives/objective_util.h"
#include "schedules/schedules.h"

namespace onestep {

torch::Tensor edm_loss_weight(const torch::Tensor& sigma, double sigma_data) {
  return (sigma.square() + sigma_data * sigma_data) / (sigma * sigma_data).square();
}

LossOutput EdmObjective::compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& /*progress*/,
                                      at::Generator& generator) {
  const torch::Tensor& y = batch.x;
  const int64_t b = y.size(0);
  const double sd = model->precond().sigma_data;
  // Per-sample draws for the whole global batch, this process's rows kept (data-parallel runs, dataset.h).
  const int64_t global = batch.global_batch();
  const torch::Tensor sigma =
      batch.own_rows(sample_lognormal(global, config_.p_mean, config_.p_std, generator, y.device()));
  const torch::Tensor noise =
      batch.own_rows(random_normal(batch.global_shape(), generator, y.device(), torch::kFloat32, "EDM noise"));
  std::vector<int64_t> shape(static_cast<size_t>(y.dim()), 1);
  shape[0] = b;
  const torch::Tensor labels = one_hot_labels(model, batch);
  const torch::Tensor x = y + sigma.reshape(shape) * noise;
  // The clean sample, or its posterior mean over the batch (Stable Target Field; objective_util.h): less variance
  // in the target, the same minimiser E[y | x] as the batch grows.
  const torch::Tensor target = clean_estimate(config_.target_estimate, batch, x, sigma, labels, &bank_);
  const torch::Tensor denoised = model->forward(x, sigma, Scalings::Edm, labels);
  const torch::Tensor weight = edm_loss_weight(sigma, sd);
  const torch::Tensor loss = (weight * squared_l2_per_sample(denoised - target)).mean();
  return {loss, Json{{"mean_weight", stat_value(weight.mean())}, {"mean_sigma", stat_value(sigma.mean())}}};
}

Json EdmObjective::to_json() const {
  Json j{{"method", "edm"},
         {"p_mean", config_.p_mean},
         {"p_std", config_.p_std},
         {"target_estimate", enum_name(config_.target_estimate)}};
  if (config_.posterior_bank > 0) j["posterior_bank"] = config_.posterior_bank;
  return j;
}

}  // namespace onestep
