// The original consistency training's EMA teacher (Song et al. 2023, algorithm 3): the baseline that iCT replaced by
// the current weights. The objective owns the teacher weights; the trainer checkpoints them via state_tensors().
#include "objectives/ema_teacher.h"

#include "core/error.h"

#include <ATen/autocast_mode.h>

namespace onestep {

void EmaTeacher::update(Denoiser& model, double decay) {
  torch::NoGradGuard no_grad;
  const auto params = model->named_parameters();
  if (weights_.empty()) {
    for (const auto& p : params) weights_.emplace_back(p.key(), p.value().detach().clone());
    return;
  }
  require(weights_.size() == params.size(), "EMA teacher does not match the model's parameters");
  size_t i = 0;
  for (const auto& p : params) weights_[i++].second.lerp_(p.value().detach(), 1.0 - decay);
}

torch::Tensor EmaTeacher::evaluate(Denoiser& model, const std::function<torch::Tensor()>& fn) {
  if (weights_.empty()) update(model, 0.0);  // before the first step the teacher equals the student
  torch::NoGradGuard no_grad;
  // The swap writes through .data() (a view of the same storage with its own version counter): the student's
  // forward graph, recorded before, saved these parameters for its backward pass, and copying through the
  // parameters themselves would bump their version and fail that backward ("modified by an inplace operation").
  // The student's values are back in place before this returns, so the saved tensors hold what the
  // graph expects.
  auto params = model->parameters();
  require(weights_.size() == params.size(), "EMA teacher does not match the model's parameters");
  std::vector<torch::Tensor> storage, saved;
  storage.reserve(params.size());
  saved.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    storage.push_back(params[i].data());
    saved.push_back(storage.back().clone());
    storage.back().copy_(weights_[i].second);
  }
  // Autocast (train.bf16) caches the low-precision copy of each weight keyed by the parameter, not by its values:
  // after the swap the teacher's forward would run the student's cached copies, and after the swap back the
  // student's next forward the teacher's (made under no_grad, so without a path to the weights). The cache is
  // emptied at both swaps; the student's recorded graph keeps the copies it used.
  at::autocast::clear_cache();
  auto put_back = [&] {
    for (size_t i = 0; i < storage.size(); ++i) storage[i].copy_(saved[i]);
    at::autocast::clear_cache();
  };
  torch::Tensor out;
  try {
    out = fn();
  } catch (...) {
    put_back();
    throw;
  }
  put_back();
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> EmaTeacher::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : weights_) out.emplace_back("teacher." + name, t);
  return out;
}

void EmaTeacher::load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  weights_.clear();
  for (const auto& [name, t] : tensors) {
    require(name.rfind("teacher.", 0) == 0, "unexpected objective state tensor '", name, "'");
    weights_.emplace_back(name.substr(8), t.clone());
  }
}

}  // namespace onestep
