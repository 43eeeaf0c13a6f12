#include "objectives/objective_util.h"

#include "core/error.h"

#include "build_paths.h"

#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <atomic>
#include <cmath>
#include <filesystem>
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

namespace {
// |row|^2 of each row of x [N, ...] in float32: [N]. One formula for the posterior's distances and the norms the bank
// keeps, so that kept and computed norms agree.
torch::Tensor row_squared_norms(const torch::Tensor& x) { return squared_l2_per_sample(x.to(torch::kFloat32)); }
}  // namespace

torch::Tensor batch_posterior_mean(const torch::Tensor& y, const torch::Tensor& x_t, const torch::Tensor& t,
                                   const torch::Tensor& labels, const torch::Tensor& ref_y,
                                   const torch::Tensor& ref_labels, const torch::Tensor& ref_squared_norms) {
  torch::NoGradGuard no_grad;
  // float32 whatever the autocast state (train.bf16): under autocast the matrix products would run in bfloat16, whose
  // 8-bit mantissa rounds the rows of the weighted mean and the distances behind the weights.
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const int64_t b = y.size(0);
  const torch::Tensor ys = y.detach().reshape({b, -1}).to(torch::kFloat32);
  const torch::Tensor xs = x_t.detach().reshape({b, -1}).to(torch::kFloat32);
  const torch::Tensor x_squared = row_squared_norms(xs).reshape({b, 1});
  const torch::Tensor scale = t.to(torch::kFloat32).square().mul(-2.0).reshape({b, 1});
  // log N(x_i; y_j, t_i^2 I) up to a term constant in j, from |x_i - y_j|^2 = |x_i|^2 + |y_j|^2 - 2 x_i.y_j: one matrix
  // product per reference set (float32: its rounding, about 1e-7 |x|^2, moves the logits by far less than they differ
  // at any t where the weights are not all on the own row).
  const auto logits_of = [&](const torch::Tensor& refs, const torch::Tensor& refs_squared) {
    return (x_squared + refs_squared.reshape({1, -1})).addmm_(xs, refs.t(), 1.0, -2.0).clamp_min_(0.0).div_(scale);
  };
  torch::Tensor logits = logits_of(ys, row_squared_norms(ys));
  // The bank's rows are used where they lie (no copy of the bank beside the batch), with their squared norms as the
  // bank keeps them; only the [B, B + M] logits are joined.
  const bool banked = ref_y.defined() && ref_y.size(0) > 0;
  torch::Tensor refs;
  if (banked) {
    refs = ref_y.detach().reshape({ref_y.size(0), -1}).to(ys.device(), torch::kFloat32);
    const torch::Tensor refs_squared = ref_squared_norms.defined() ? ref_squared_norms.to(ys.device(), torch::kFloat32)
                                                                   : row_squared_norms(refs);
    logits = torch::cat({logits, logits_of(refs, refs_squared)}, 1);
  }
  const int64_t m = logits.size(1);
  if (labels.defined()) {
    const torch::Tensor l = labels.to(x_t.device());
    torch::Tensor classes = l;
    if (banked) {
      require(ref_labels.defined(), "batch posterior: the reference rows have no labels");
      classes = torch::cat({l, ref_labels.to(x_t.device())});
    }
    logits.masked_fill_(l.reshape({b, 1}) != classes.reshape({1, m}), -std::numeric_limits<float>::infinity());
  }
  const torch::Tensor w = torch::softmax(logits, 1);
  torch::Tensor mean = w.narrow(1, 0, b).mm(ys);
  if (banked) mean.addmm_(w.narrow(1, b, m - b), refs);
  return mean.to(y.scalar_type()).reshape(y.sizes());
}

void PosteriorBank::push(const Batch& batch) {
  if (capacity_ <= 0) return;
  torch::NoGradGuard no_grad;
  torch::Tensor rows = batch.x.detach().to(torch::kFloat32);
  torch::Tensor labels = batch.labels;
  if (!images_.defined()) {
    std::vector<int64_t> shape = rows.sizes().vec();
    shape[0] = capacity_;
    images_ = torch::empty(shape, rows.options());
    squared_norms_ = torch::empty({capacity_}, rows.options());
    if (labels.defined()) labels_ = torch::empty({capacity_}, labels.options());
  }
  require(labels.defined() == labels_.defined(), "posterior bank: a batch ", labels.defined() ? "with" : "without",
          " labels after batches ", labels_.defined() ? "with" : "without");
  int64_t n = rows.size(0);
  if (n > capacity_) {  // only the last capacity rows would stay
    rows = rows.narrow(0, n - capacity_, capacity_);
    if (labels.defined()) labels = labels.narrow(0, n - capacity_, capacity_);
    n = capacity_;
  }
  // At most two pieces: up to the end of the ring, then from its start.
  for (int64_t done = 0; done < n;) {
    const int64_t piece = std::min(n - done, capacity_ - next_);
    const torch::Tensor part = rows.narrow(0, done, piece);
    images_.narrow(0, next_, piece).copy_(part);
    squared_norms_.narrow(0, next_, piece).copy_(row_squared_norms(part));
    if (labels.defined()) labels_.narrow(0, next_, piece).copy_(labels.narrow(0, done, piece));
    next_ = (next_ + piece) % capacity_;
    done += piece;
  }
  size_ = std::min(capacity_, size_ + n);
}

std::vector<std::pair<std::string, torch::Tensor>> PosteriorBank::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  if (size_ == 0) return out;
  out.emplace_back("posterior_bank.images", images());
  if (labels_.defined()) out.emplace_back("posterior_bank.labels", labels());
  out.emplace_back("posterior_bank.next", torch::tensor({next_}, torch::kInt64));
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> PosteriorBank::load_state_tensors(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  torch::Tensor images, labels, next;
  std::vector<std::pair<std::string, torch::Tensor>> others;
  for (const auto& [name, t] : tensors) {
    if (name == "posterior_bank.images")
      images = t;
    else if (name == "posterior_bank.labels")
      labels = t;
    else if (name == "posterior_bank.next")
      next = t;
    else
      others.emplace_back(name, t);
  }
  images_ = labels_ = squared_norms_ = torch::Tensor();
  size_ = next_ = 0;
  if (!images.defined()) return others;
  size_ = images.size(0);
  require(size_ <= capacity_, "checkpoint: the posterior bank holds ", size_,
          " rows, more than objective.posterior_bank = ", capacity_);
  require(!labels.defined() || (labels.dim() == 1 && labels.size(0) == size_),
          "checkpoint: posterior_bank.labels does not match posterior_bank.images");
  std::vector<int64_t> shape = images.sizes().vec();
  shape[0] = capacity_;
  images_ = torch::empty(shape, images.options());
  images_.narrow(0, 0, size_).copy_(images);
  squared_norms_ = torch::empty({capacity_}, images.options().dtype(torch::kFloat32));
  squared_norms_.narrow(0, 0, size_).copy_(row_squared_norms(images));
  if (labels.defined()) {
    labels_ = torch::empty({capacity_}, labels.options());
    labels_.narrow(0, 0, size_).copy_(labels);
  }
  require(!next.defined() || next.numel() == 1, "checkpoint: posterior_bank.next holds ",
          next.defined() ? next.numel() : 0, " values, not one");
  next_ = next.defined() ? next.reshape({-1})[0].item<int64_t>() : size_ % capacity_;
  require(next_ >= 0 && next_ < capacity_ && (size_ == capacity_ || next_ == size_),
          "checkpoint: posterior_bank.next = ", next_, " is not a position of a bank of ", size_, " rows");
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
  const torch::Tensor d =
      batch_posterior_mean(batch.x, x_t, t, labels, bank->images(), bank->labels(), bank->squared_norms());
  bank->push(batch);
  return d;
}

Denoiser load_frozen_teacher(const std::string& path, const std::string& key) {
  const std::filesystem::path given(path);
  const auto in_checkout = std::filesystem::path(ONESTEP_SOURCE_DIR) / given;
  const bool as_given = given.is_absolute() || std::filesystem::exists(given) || !std::filesystem::exists(in_checkout);
  Denoiser teacher = load_model(as_given ? given : in_checkout);
  require(teacher->precond().parameterization == Parameterization::Edm, key, " '", path,
          "': the teacher must be an EDM diffusion model, this file holds a ",
          parameterization_name(teacher->precond().parameterization), " model");
  teacher->eval();
  for (auto& param : teacher->parameters()) param.requires_grad_(false);
  return teacher;
}

torch::Tensor teacher_denoised(Denoiser& teacher, const torch::Tensor& x_t, const torch::Tensor& t,
                               const torch::Tensor& one_hot) {
  teacher->to(x_t.device());  // a no-op after the first step
  torch::Tensor d;
  {
    c10::InferenceMode inference;  // no autograd bookkeeping for a frozen network
    d = torch::nan_to_num(teacher->forward(x_t, t, Scalings::Edm, one_hot));
  }
  return d.clone();  // copied out of inference mode: a plain constant for the student's graph
}

void require_same_data(const Denoiser& teacher, const Denoiser& model, const std::string& key) {
  require(teacher->sample_shape() == model->sample_shape() && teacher->label_dim() == model->label_dim(), key,
          ": the teacher's samples or labels differ from the configured model's");
}

torch::Tensor euler_step_to(const torch::Tensor& x_t, const torch::Tensor& denoised, const torch::Tensor& t,
                            const torch::Tensor& r) {
  std::vector<int64_t> shape(static_cast<size_t>(x_t.dim()), 1);
  shape[0] = x_t.size(0);
  return denoised + (r / t).reshape(shape) * (x_t - denoised);
}

}  // namespace onestep
