#include "objectives/objective_util.h"

#include "core/error.h"

#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <atomic>
#include <cmath>
#include <limits>

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

namespace {
std::atomic<bool> row_subset_enabled{true};
}  // namespace

void set_consistency_target_row_subset(bool enabled) { row_subset_enabled = enabled; }

torch::Tensor consistency_target(Denoiser& model, const torch::Tensor& x_r, const torch::Tensor& r, Scalings scalings,
                                 const torch::Tensor& labels, const torch::Tensor& clean, SharedDropoutState& dropout) {
  torch::NoGradGuard no_grad;
  if (row_subset_enabled && x_r.device().is_cpu() && !labels.defined()) {
    const torch::Tensor rows = torch::nonzero(r > 0).reshape({-1});
    const int64_t n = rows.size(0);
    const bool all = n == r.size(0);
    if (dropout.replay_masks(all ? torch::Tensor() : rows)) {
      torch::Tensor target = clean.detach().clone(at::MemoryFormat::Preserve);
      if (n == 0) return target;  // no row needs the teacher (as the reference skips it when r.max() = 0)
      torch::Tensor teacher;
      {
        // No autograd bookkeeping at all (version counters, views); the result is copied out of inference mode.
        c10::InferenceMode inference;
        teacher = all ? model->forward(x_r, r, scalings, labels)
                      : model->forward(x_r.index_select(0, rows), r.index_select(0, rows), scalings, labels);
        teacher = torch::nan_to_num(teacher);
      }
      return all ? target.copy_(teacher) : target.index_copy_(0, rows, teacher);
    }
  }
  std::vector<int64_t> shape(static_cast<size_t>(x_r.dim()), 1);
  shape[0] = x_r.size(0);
  // r == 0 means the target is the clean image (its estimate); evaluate those rows at a harmless sigma and replace
  // them.
  const torch::Tensor r_safe = torch::where(r > 0, r, torch::ones_like(r));
  const torch::Tensor teacher = torch::nan_to_num(model->forward(x_r, r_safe, scalings, labels));
  return torch::where((r == 0).reshape(shape), clean, teacher).detach();
}

Json stat_value(const torch::Tensor& scalar) { return scalar.detach().to(torch::kCPU).item<double>(); }

torch::Tensor batch_posterior_mean(const torch::Tensor& y, const torch::Tensor& x_t, const torch::Tensor& t,
                                   const torch::Tensor& labels, const torch::Tensor& ref_y,
                                   const torch::Tensor& ref_labels) {
  torch::NoGradGuard no_grad;
  // float32 whatever the autocast state (train.bf16): under autocast the matrix products would run in bfloat16, whose
  // 8-bit mantissa rounds the rows of the weighted mean and the distances behind the weights.
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const int64_t b = y.size(0);
  torch::Tensor ys = y.detach().reshape({b, -1}).to(torch::kFloat32);
  const bool banked = ref_y.defined() && ref_y.size(0) > 0;
  if (banked) ys = torch::cat({ys, ref_y.detach().reshape({ref_y.size(0), -1}).to(ys.device(), torch::kFloat32)});
  const int64_t m = ys.size(0);
  const torch::Tensor xs = x_t.detach().reshape({b, -1}).to(torch::kFloat32);
  // |x_i - y_j|^2 by the expansion |x_i|^2 + |y_j|^2 - 2 x_i.y_j, one matrix product (float32: its rounding, about
  // 1e-7 |x|^2, moves the logits by far less than they differ at any t where the weights are not all on the own row).
  const torch::Tensor squared = (xs.square().sum(1, true) + ys.square().sum(1).reshape({1, m}))
                                    .addmm_(xs, ys.t(), 1.0, -2.0)
                                    .clamp_min_(0.0);
  // log N(x_i; y_j, t_i^2 I) up to a term constant in j.
  torch::Tensor logits = squared.div_(t.to(torch::kFloat32).square().mul(-2.0).reshape({b, 1}));
  if (labels.defined()) {
    torch::Tensor l = labels.to(x_t.device());
    torch::Tensor refs = l;
    if (banked) {
      require(ref_labels.defined(), "batch posterior: the reference rows have no labels");
      refs = torch::cat({l, ref_labels.to(x_t.device())});
    }
    logits.masked_fill_(l.reshape({b, 1}) != refs.reshape({1, m}), -std::numeric_limits<float>::infinity());
  }
  return torch::softmax(logits, 1).mm(ys).to(y.scalar_type()).reshape(y.sizes());
}

void PosteriorBank::push(const Batch& batch) {
  if (capacity_ <= 0) return;
  torch::NoGradGuard no_grad;
  const torch::Tensor rows = batch.x.detach().to(torch::kFloat32);
  images_ = images_.defined() ? torch::cat({images_, rows}) : rows.clone();
  if (batch.labels.defined()) labels_ = labels_.defined() ? torch::cat({labels_, batch.labels}) : batch.labels.clone();
  if (images_.size(0) > capacity_) {
    const int64_t drop = images_.size(0) - capacity_;
    images_ = images_.narrow(0, drop, capacity_).clone();
    if (labels_.defined()) labels_ = labels_.narrow(0, drop, capacity_).clone();
  }
}

std::vector<std::pair<std::string, torch::Tensor>> PosteriorBank::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (images_.defined()) out.emplace_back("posterior_bank.images", images_);
  if (labels_.defined()) out.emplace_back("posterior_bank.labels", labels_);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> PosteriorBank::load_state_tensors(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  images_ = torch::Tensor();
  labels_ = torch::Tensor();
  std::vector<std::pair<std::string, torch::Tensor>> others;
  for (const auto& [name, t] : tensors) {
    if (name == "posterior_bank.images")
      images_ = t.clone();
    else if (name == "posterior_bank.labels")
      labels_ = t.clone();
    else
      others.emplace_back(name, t);
  }
  require(!images_.defined() || images_.size(0) <= capacity_, "checkpoint: the posterior bank holds ",
          images_.defined() ? images_.size(0) : 0, " rows, more than objective.posterior_bank = ", capacity_);
  return others;
}

std::string posterior_bank_reason(const PosteriorBank& bank) {
  return bank.capacity() > 0 ? "objective.posterior_bank keeps one process's training rows, which a checkpoint holds "
                               "for one process only; train with one process or set objective.posterior_bank = 0"
                             : "";
}

void require_no_other_state(const std::vector<std::pair<std::string, torch::Tensor>>& rest) {
  require(rest.empty(), "unexpected objective state tensor '", rest.empty() ? "" : rest.front().first, "'");
}

torch::Tensor clean_estimate(TargetEstimate target_estimate, const Batch& batch, const torch::Tensor& x_t,
                             const torch::Tensor& t, const torch::Tensor& one_hot, PosteriorBank* bank) {
  if (target_estimate != TargetEstimate::BatchPosterior) return batch.x;
  const torch::Tensor labels = one_hot.defined() ? batch.labels : torch::Tensor();
  if (bank == nullptr || bank->capacity() <= 0) return batch_posterior_mean(batch.x, x_t, t, labels);
  const torch::Tensor d = batch_posterior_mean(batch.x, x_t, t, labels, bank->images(), bank->labels());
  bank->push(batch);
  return d;
}

torch::Tensor euler_step_to(const torch::Tensor& x_t, const torch::Tensor& denoised, const torch::Tensor& t,
                            const torch::Tensor& r) {
  std::vector<int64_t> shape(static_cast<size_t>(x_t.dim()), 1);
  shape[0] = x_t.size(0);
  return denoised + (r / t).reshape(shape) * (x_t - denoised);
}

}  // namespace onestep
