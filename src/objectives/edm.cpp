#include "core/random.h"
#include "objectives/methods.h"
#include "objectives/objective_util.h"

namespace onestep {

torch::Tensor edm_loss_weight(const torch::Tensor& sigma, double sigma_data) {
  return (sigma.square() + sigma_data * sigma_data) / (sigma * sigma_data).square();
}

LossOutput EdmObjective::compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& /*progress*/,
                                      at::Generator& generator) {
  const torch::Tensor& y = batch.x;
  const int64_t b = y.size(0);
  const double sd = model->precond().sigma_data;
  const torch::Tensor sigma = sample_lognormal(b, config_.p_mean, config_.p_std, generator, y.device());
  const torch::Tensor noise = random_normal(y.sizes(), generator, y.device(), torch::kFloat32, "EDM noise");
  std::vector<int64_t> shape(static_cast<size_t>(y.dim()), 1);
  shape[0] = b;
  const torch::Tensor denoised =
      model->forward(y + sigma.reshape(shape) * noise, sigma, Scalings::Edm, one_hot_labels(model, batch));
  const torch::Tensor weight = edm_loss_weight(sigma, sd);
  const torch::Tensor loss = (weight * squared_l2_per_sample(denoised - y)).mean();
  return {loss, Json{{"mean_weight", stat_value(weight.mean())}, {"mean_sigma", stat_value(sigma.mean())}}};
}

Json EdmObjective::to_json() const { return Json{{"method", "edm"}, {"p_mean", config_.p_mean}, {"p_std", config_.p_std}}; }

}  // namespace onestep
