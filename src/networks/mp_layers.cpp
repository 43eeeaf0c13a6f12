#include "networks/mp_layers.h"

#include "core/error.h"
#include "networks/layers.h"

#include <cmath>
#include <numeric>

namespace onestep {

namespace {
thread_local bool meta_init = false;
}  // namespace

MetaInit::MetaInit() : previous_(meta_init) { meta_init = true; }
MetaInit::~MetaInit() { meta_init = previous_; }

torch::TensorOptions mp_init_options() {
  return torch::TensorOptions().dtype(torch::kFloat32).device(meta_init ? torch::kMeta : torch::kCPU);
}

torch::Tensor mp_normalize(const torch::Tensor& x, std::vector<int64_t> dims, double eps) {
  if (dims.empty())
    for (int64_t d = 1; d < x.dim(); ++d) dims.push_back(d);
  torch::Tensor norm = torch::linalg_vector_norm(x, 2, dims, /*keepdim=*/true, torch::kFloat32);
  const double scale = std::sqrt(static_cast<double>(norm.numel()) / static_cast<double>(x.numel()));
  return x / (norm * scale + eps).to(x.dtype());
}

torch::Tensor mp_silu(const torch::Tensor& x) { return torch::silu(x) / 0.596; }

torch::Tensor mp_sum(const torch::Tensor& a, const torch::Tensor& b, double t) {
  return a.lerp(b, t) / std::sqrt((1 - t) * (1 - t) + t * t);
}

torch::Tensor mp_cat(const torch::Tensor& a, const torch::Tensor& b, double t) {
  const double na = static_cast<double>(a.size(1)), nb = static_cast<double>(b.size(1));
  const double c = std::sqrt((na + nb) / ((1 - t) * (1 - t) + t * t));
  return torch::cat({a * (c / std::sqrt(na) * (1 - t)), b * (c / std::sqrt(nb) * t)}, 1);
}

torch::Tensor mp_resample(const torch::Tensor& x, const std::vector<double>& f, Resample mode) {
  if (mode == Resample::Keep) return x;
  const double sum = std::accumulate(f.begin(), f.end(), 0.0);
  const auto n = static_cast<int64_t>(f.size());
  torch::Tensor taps = torch::tensor(f, torch::kFloat64).div(sum).to(x.options());
  torch::Tensor kernel = torch::outer(taps, taps).reshape({1, 1, n, n}).repeat({x.size(1), 1, 1, 1});
  const int64_t pad = (n - 1) / 2, c = x.size(1);
  using Ints = std::vector<int64_t>;
  if (mode == Resample::Down) return torch::conv2d(x, kernel, torch::Tensor(), Ints{2, 2}, Ints{pad, pad}, Ints{1, 1}, c);
  return torch::conv_transpose2d(x, kernel * 4, torch::Tensor(), Ints{2, 2}, Ints{pad, pad}, Ints{0, 0}, c);
}

MPFourierImpl::MPFourierImpl(int64_t channels) {
  charge_parameter_values({2, channels});
  freqs = register_buffer("freqs", 2 * M_PI * torch::randn({channels}, mp_init_options()));
  phases = register_buffer("phases", 2 * M_PI * torch::rand({channels}, mp_init_options()));
}

torch::Tensor MPFourierImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::outer(x.to(torch::kFloat32), freqs.to(torch::kFloat32)) + phases.to(torch::kFloat32);
  return (y.cos() * std::sqrt(2.0)).to(x.dtype());
}

MPConvImpl::MPConvImpl(int64_t in_channels_, int64_t out_channels_, int64_t kernel_)
    : in_channels(in_channels_), out_channels(out_channels_), kernel(kernel_) {
  std::vector<int64_t> shape = {out_channels, in_channels};
  if (kernel > 0) shape.insert(shape.end(), {kernel, kernel});
  charge_parameter_values(shape);
  weight = register_parameter("weight", torch::randn(shape, mp_init_options()));  // EDM2: N(0, 1), normalised at use
}

torch::Tensor MPConvImpl::forward(const torch::Tensor& x, const torch::Tensor& gain) {
  if (is_training() && torch::GradMode::is_enabled()) {
    torch::NoGradGuard no_grad;
    weight.copy_(mp_normalize(weight.to(torch::kFloat32)));  // forced weight normalisation (Eq. 66)
  }
  torch::Tensor w = mp_normalize(weight.to(torch::kFloat32));  // traditional weight normalisation
  const double fan_in = static_cast<double>(w[0].numel());
  w = gain.defined() ? w * (gain / std::sqrt(fan_in)) : w * (1 / std::sqrt(fan_in));
  w = w.to(x.dtype());
  if (kernel == 0) return torch::matmul(x, w.t());
  const int64_t pad = kernel / 2;
  return torch::conv2d(x, w, torch::Tensor(), std::vector<int64_t>{1, 1}, std::vector<int64_t>{pad, pad});
}

int64_t MPConvImpl::macs(int64_t res) const {
  return kernel == 0 ? in_channels * out_channels : res * res * in_channels * out_channels * kernel * kernel;
}

}  // namespace onestep
