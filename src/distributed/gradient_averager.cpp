#include "distributed/gradient_averager.h"

#include "core/error.h"

namespace onestep {

GradientAverager::GradientAverager(std::shared_ptr<Communicator> communicator, std::vector<torch::Tensor> parameters,
                                   int64_t bucket_bytes)
    : communicator_(std::move(communicator)), parameters_(std::move(parameters)) {
  require(communicator_ != nullptr, "GradientAverager: no communicator");
  const size_t n = parameters_.size();
  bucket_of_.assign(n, 0);
  slot_of_.assign(n, 0);
  received_.assign(n, 0);
  // Reverse registration order: backward reaches the last layers first.
  int64_t bucket_elements = 0;
  for (size_t k = n; k-- > 0;) {
    const torch::Tensor& p = parameters_[k];
    const bool fits = !buckets_.empty() && bucket_elements * p.element_size() < bucket_bytes &&
                      parameters_[buckets_.back().parameters.front()].scalar_type() == p.scalar_type() &&
                      parameters_[buckets_.back().parameters.front()].device() == p.device();
    if (!fits) {
      buckets_.emplace_back();
      bucket_elements = 0;
    }
    Bucket& b = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_of_[k] = b.parameters.size();
    b.parameters.push_back(k);
    b.offsets.push_back(bucket_elements);
    bucket_elements += p.numel();
  }
  for (Bucket& b : buckets_) {
    const torch::Tensor& first = parameters_[b.parameters.front()];
    int64_t total = 0;
    for (size_t k : b.parameters) total += parameters_[k].numel();
    b.flags_at = total;
    b.flat = torch::zeros({total + static_cast<int64_t>(b.parameters.size())}, first.options().requires_grad(false));
  }
  for (size_t k = 0; k < n; ++k)
    hook_ids_.push_back(parameters_[k].register_hook([this, k](const torch::Tensor& grad) { on_gradient(k, grad); }));
}

GradientAverager::~GradientAverager() {
  for (size_t k = 0; k < hook_ids_.size(); ++k) parameters_[k].remove_hook(hook_ids_[k]);
}

void GradientAverager::begin() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fill(received_.begin(), received_.end(), 0);
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    b.remaining = b.parameters.size();
    b.started = false;
    b.flat.narrow(0, b.flags_at, static_cast<int64_t>(b.parameters.size())).zero_();
  }
  next_to_start_ = 0;
  active_ = true;
}

void GradientAverager::on_gradient(size_t parameter, const torch::Tensor& grad) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!active_ || received_[parameter]) return;
  Bucket& b = buckets_[bucket_of_[parameter]];
  torch::NoGradGuard no_grad;
  torch::Tensor slot = b.flat.narrow(0, b.offsets[slot_of_[parameter]], grad.numel());
  // A leaf's hook sees the gradient before autograd adds it to .grad: what .grad already holds (the earlier
  // micro-batches of gradient accumulation; nothing otherwise, the trainer clears it) joins it here.
  const torch::Tensor& accumulated = parameters_[parameter].grad();
  if (accumulated.defined()) slot.copy_(grad.reshape({-1}) + accumulated.reshape({-1}));
  else slot.copy_(grad.reshape({-1}));
  b.flat[b.flags_at + static_cast<int64_t>(slot_of_[parameter])].fill_(1);
  received_[parameter] = 1;
  --b.remaining;
  start_ready_buckets();
}

void GradientAverager::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].remaining == 0) {
    Bucket& b = buckets_[next_to_start_++];
    b.started = true;
    communicator_->start_sum(b.flat);
  }
}

void GradientAverager::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  require(active_, "GradientAverager::finish without begin");
  active_ = false;
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    if (b.started) continue;
    for (size_t slot = 0; slot < b.parameters.size(); ++slot) {
      const size_t k = b.parameters[slot];
      if (received_[k]) continue;
      torch::Tensor flat = b.flat.narrow(0, b.offsets[slot], parameters_[k].numel());
      const torch::Tensor& accumulated = parameters_[k].grad();
      if (accumulated.defined()) flat.copy_(accumulated.reshape({-1}));
      else flat.zero_();
      b.flat[b.flags_at + static_cast<int64_t>(slot)].fill_(accumulated.defined() ? 1 : 0);
    }
    b.remaining = 0;
  }
  start_ready_buckets();
  communicator_->wait_all("gradient all-reduce");
  for (Bucket& b : buckets_) {
    b.flat.div_(communicator_->world_size());
    // The summed flags: how many ranks had a gradient for each parameter (one host copy per bucket).
    const torch::Tensor ranks_with_gradient =
        b.flat.narrow(0, b.flags_at, static_cast<int64_t>(b.parameters.size())).to(torch::kCPU, torch::kFloat)
            .contiguous();
    const float* with_gradient = ranks_with_gradient.data_ptr<float>();
    for (size_t slot = 0; slot < b.parameters.size(); ++slot) {
      const size_t k = b.parameters[slot];
      torch::Tensor& grad = parameters_[k].mutable_grad();
      if (!(with_gradient[slot] > 0)) continue;  // no rank has one: none keeps one
      const torch::Tensor mean = b.flat.narrow(0, b.offsets[slot], parameters_[k].numel()).view_as(parameters_[k]);
      if (grad.defined()) grad.copy_(mean);
      else grad = mean.clone();
    }
  }
}

}  // namespace onestep
