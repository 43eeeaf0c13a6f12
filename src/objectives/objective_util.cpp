#include "objectives/objective_util.h"

#include "core/error.h"

#include <ATen/Context.h>

#include <cmath>

namespace onestep {

torch::Tensor squared_l2_per_sample(const torch::Tensor& diff) { return diff.square().reshape({diff.size(0), -1}).sum(1); }

torch::Tensor pseudo_huber_per_sample(const torch::Tensor& diff, double c) {
  return (squared_l2_per_sample(diff) + c * c).sqrt() - c;
}

double default_huber_c(const std::vector<int64_t>& sample_shape) {
  int64_t d = 1;
  for (int64_t s : sample_shape) d *= s;
  return 0.00054 * std::sqrt(static_cast<double>(d));
}

torch::Tensor one_hot_labels(const Denoiser& model, const Batch& batch) {
  const int64_t dim = model->label_dim();
  if (dim <= 0) return {};
  require(batch.labels.defined(), "the model is class-conditional (label_dim ", dim,
          ") but the data has no labels: set data.labels = true");
  require(batch.labels.min().item<int64_t>() >= 0 && batch.labels.max().item<int64_t>() < dim,
          "class label out of range for label_dim ", dim);
  return torch::one_hot(batch.labels.to(batch.x.device()), dim).to(torch::kFloat32);
}

SharedDropoutState::SharedDropoutState(const torch::Device& device)
    : generator_(at::globalContext().defaultGenerator(device.type() == torch::kCPU ? c10::Device(torch::kCPU) : device)) {
  std::lock_guard<std::mutex> lock(generator_.mutex());
  start_ = generator_.get_state();
}

void SharedDropoutState::rewind() {
  std::lock_guard<std::mutex> lock(generator_.mutex());
  after_student_ = generator_.get_state();
  generator_.set_state(start_);
}

void SharedDropoutState::restore() {
  std::lock_guard<std::mutex> lock(generator_.mutex());
  if (after_student_.defined()) generator_.set_state(after_student_);
}

Json stat_value(const torch::Tensor& scalar) { return scalar.detach().to(torch::kCPU).item<double>(); }

}  // namespace onestep
