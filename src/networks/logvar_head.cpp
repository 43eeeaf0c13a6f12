#include "networks/logvar_head.h"

#include <cmath>

namespace onestep {

LogVarHeadImpl::LogVarHeadImpl(int64_t channels) {
  embed_ = register_module("embed", PositionalEmbedding(channels, 10000.0, true));
  // Zero weights: w(t) = 0 at the start, the plain squared error (InitSpec scales the drawn weights by 0).
  linear_ = register_module("linear", Linear(channels, 1, true, InitSpec{"xavier_uniform", 0.0, 0.0}));
}

torch::Tensor LogVarHeadImpl::forward(const torch::Tensor& t) {
  // t in [0, pi/2] stretched to [0, 1000], the range of DDPM's step index that the positional embedding's
  // frequencies (1 .. 1e-4) were laid out for: t itself would leave all but the first few channels constant.
  const torch::Tensor position = t.to(torch::kFloat32).reshape({-1}) * (1000.0 / (M_PI / 2));
  return linear_->forward(embed_->forward(position)).reshape({-1});
}

}  // namespace onestep
