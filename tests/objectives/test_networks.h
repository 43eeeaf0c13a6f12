#pragma once
// Test-only stand-in networks with closed-form behaviour, wrapped in the real DenoiserImpl.
#include "precond/model.h"

#include <cmath>
#include <vector>

namespace onestep::testing {

// F = 0, so D(x, sigma) = c_skip(sigma) x. Records every sigma it is called at (sigma = exp(4 c_noise)) and the
// last input it saw.
class ZeroNetImpl : public NetworkImpl {
 public:
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise_labels, const torch::Tensor& = {},
                        const torch::Tensor& = {}) override {
    calls.push_back((noise_labels * 4).exp().mean().item<double>());
    last_input = x.clone();
    return torch::zeros_like(x) + 0 * weight;
  }
  ZeroNetImpl() { weight = register_parameter("weight", torch::zeros({1})); }
  torch::Tensor weight;
  std::vector<double> calls;
  torch::Tensor last_input;
};

// The exact denoiser of Gaussian data N(mu, a^2 I) under the EDM scalings: D(x, s) = mu + a^2/(a^2+s^2) (x - mu).
// F is solved from D = c_skip x + c_out F with c_in x and c_noise as inputs.
class GaussianNetImpl : public NetworkImpl {
 public:
  GaussianNetImpl(double mu, double a, double sigma_data) : mu_(mu), a_(a), sd_(sigma_data) {
    register_parameter("unused", torch::zeros({1}));
  }
  torch::Tensor forward(const torch::Tensor& xin, const torch::Tensor& noise_labels, const torch::Tensor& = {},
                        const torch::Tensor& = {}) override {
    ++num_calls;
    std::vector<int64_t> shape(static_cast<size_t>(xin.dim()), 1);
    shape[0] = xin.size(0);
    const auto s = (noise_labels.to(torch::kFloat64) * 4).exp().reshape(shape);
    const auto x = xin.to(torch::kFloat64) * (s.square() + sd_ * sd_).sqrt();
    const auto d = mu_ + a_ * a_ / (a_ * a_ + s.square()) * (x - mu_);
    const auto c_skip = sd_ * sd_ / (s.square() + sd_ * sd_);
    const auto c_out = s * sd_ / (s.square() + sd_ * sd_).sqrt();
    return ((d - c_skip * x) / c_out).to(torch::kFloat32);
  }
  int num_calls = 0;

 private:
  double mu_, a_, sd_;
};

// A tiny dropout MLP: F = W2 dropout(relu(W1 [x, c_noise])).
class DropoutNetImpl : public NetworkImpl {
 public:
  explicit DropoutNetImpl(int64_t dim, double p = 0.5) : p_(p) {
    w1 = register_parameter("w1", torch::randn({dim + 1, 32}) * 0.5);
    w2 = register_parameter("w2", torch::randn({32, dim}) * 0.5);
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise_labels, const torch::Tensor& = {},
                        const torch::Tensor& = {}) override {
    auto h = torch::relu(torch::cat({x, noise_labels.reshape({-1, 1})}, 1).matmul(w1));
    return torch::dropout(h, p_, is_training()).matmul(w2);
  }
  torch::Tensor w1, w2;

 private:
  double p_;
};

inline PrecondConfig edm_precond(double sigma_min = 0.002) {
  PrecondConfig p;
  p.sigma_min = sigma_min;
  p.train_scalings = Scalings::Edm;
  p.sample_scalings = Scalings::Edm;
  return p;
}

inline Json points_model_config(int64_t dim) { return Json{{"arch", "mlp"}, {"in_dim", dim}, {"label_dim", 0}}; }

}  // namespace onestep::testing
