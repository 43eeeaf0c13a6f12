#include "trainer/optimizer.h"

#include "core/error.h"

#include <cmath>

namespace onestep {

Optimizer::Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params, AdamHyper hyper) : hyper_(hyper) {
  require(hyper.beta1 >= 0 && hyper.beta1 < 1 && hyper.beta2 >= 0 && hyper.beta2 < 1,
          "optimizer betas must lie in [0, 1), got (", hyper.beta1, ", ", hyper.beta2, ")");
  require(hyper.eps >= 0, "optimizer eps must be >= 0, got ", hyper.eps);
  for (auto& [name, param] : params) {
    names_.push_back(name);
    params_.push_back(param);
    exp_avg_.push_back(torch::zeros_like(param, torch::MemoryFormat::Preserve));
    exp_avg_sq_.push_back(torch::zeros_like(param, torch::MemoryFormat::Preserve));
  }
}

void Optimizer::step(double lr) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> params, grads, exp_avg, exp_avg_sq;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& grad = params_[i].grad();
    if (!grad.defined()) continue;
    params.push_back(params_[i]);
    grads.push_back(grad);
    exp_avg.push_back(exp_avg_[i]);
    exp_avg_sq.push_back(exp_avg_sq_[i]);
  }
  ++step_count_;
  if (params.empty()) return;
  if (hyper_.weight_decay != 0) grads = at::_foreach_add(grads, params, hyper_.weight_decay);
  // m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2  (as PyTorch: lerp, then mul + addcmul)
  at::_foreach_lerp_(exp_avg, grads, 1.0 - hyper_.beta1);
  at::_foreach_mul_(exp_avg_sq, hyper_.beta2);
  at::_foreach_addcmul_(exp_avg_sq, grads, grads, 1.0 - hyper_.beta2);
  apply(params, exp_avg, exp_avg_sq, step_count_, lr);
}

std::vector<std::pair<std::string, torch::Tensor>> Optimizer::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  out.emplace_back("step", torch::tensor(step_count_, torch::kInt64));
  for (size_t i = 0; i < names_.size(); ++i) {
    out.emplace_back(names_[i] + ".exp_avg", exp_avg_[i]);
    out.emplace_back(names_[i] + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  return out;
}

void Optimizer::load_state_tensors(const std::function<const torch::Tensor*(const std::string&)>& find) {
  torch::NoGradGuard no_grad;
  auto get = [&](const std::string& key, const torch::Tensor& like) -> torch::Tensor {
    const torch::Tensor* t = find(key);
    require(t != nullptr, "optimizer state: missing tensor '", key, "'");
    require(t->sizes() == like.sizes(), "optimizer state: tensor '", key, "' has shape ", t->sizes(), ", expected ",
            like.sizes());
    return *t;
  };
  const torch::Tensor* step = find("step");
  require(step != nullptr && step->numel() == 1, "optimizer state: missing or malformed 'step'");
  for (size_t i = 0; i < names_.size(); ++i) {
    exp_avg_[i].copy_(get(names_[i] + ".exp_avg", exp_avg_[i]));
    exp_avg_sq_[i].copy_(get(names_[i] + ".exp_avg_sq", exp_avg_sq_[i]));
  }
  step_count_ = step->to(torch::kInt64).item<int64_t>();
}

void Adam::apply(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& exp_avg,
                 std::vector<torch::Tensor>& exp_avg_sq, int64_t t, double lr) {
  const double bias1 = 1.0 - std::pow(hyper_.beta1, static_cast<double>(t));
  const double bias2 = 1.0 - std::pow(hyper_.beta2, static_cast<double>(t));
  // theta <- theta - lr/bias1 * m / (sqrt(v)/sqrt(bias2) + eps)
  auto denom = at::_foreach_sqrt(exp_avg_sq);
  at::_foreach_div_(denom, std::sqrt(bias2));
  at::_foreach_add_(denom, hyper_.eps);
  at::_foreach_addcdiv_(params, exp_avg, denom, -lr / bias1);
}

double RAdam::rho(int64_t t, double beta2) {
  const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;
  const double beta2_t = std::pow(beta2, static_cast<double>(t));
  return rho_inf - 2.0 * static_cast<double>(t) * beta2_t / (1.0 - beta2_t);
}

double RAdam::rectification(int64_t t, double beta2) {
  const double rho_inf = 2.0 / (1.0 - beta2) - 1.0;
  const double rho_t = rho(t, beta2);
  return std::sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t));
}

void RAdam::apply(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& exp_avg,
                  std::vector<torch::Tensor>& exp_avg_sq, int64_t t, double lr) {
  const double bias1 = 1.0 - std::pow(hyper_.beta1, static_cast<double>(t));
  const double bias2 = 1.0 - std::pow(hyper_.beta2, static_cast<double>(t));
  if (rho(t, hyper_.beta2) > 5.0) {
    // theta <- theta - lr r_t / bias1 * m * sqrt(bias2) / (sqrt(v) + eps)
    auto denom = at::_foreach_sqrt(exp_avg_sq);
    at::_foreach_add_(denom, hyper_.eps);
    at::_foreach_addcdiv_(params, exp_avg, denom, -lr * rectification(t, hyper_.beta2) * std::sqrt(bias2) / bias1);
  } else {
    // Un-rectified: momentum with bias correction only.
    at::_foreach_add_(params, exp_avg, -lr / bias1);
  }
}

std::unique_ptr<Optimizer> make_optimizer(OptimizerKind kind,
                                          std::vector<std::pair<std::string, torch::Tensor>> params,
                                          AdamHyper hyper) {
  switch (kind) {
    case OptimizerKind::Adam: return std::make_unique<Adam>(std::move(params), hyper);
    case OptimizerKind::RAdam: return std::make_unique<RAdam>(std::move(params), hyper);
  }
  fail("train.optimizer: unhandled optimizer ", enum_name(kind));
}

}  // namespace onestep
