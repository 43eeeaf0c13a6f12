#include "networks/embeddings.h"

#include "core/error.h"
#include "networks/layers.h"

#include <cmath>

namespace onestep {

PositionalEmbeddingImpl::PositionalEmbeddingImpl(int64_t channels_, double max_positions_, bool endpoint_)
    : channels(channels_), max_positions(max_positions_), endpoint(endpoint_) {
  require(channels >= 2 && channels % 2 == 0, "positional embedding needs an even number of channels, got ",
          channels);
  require(!(endpoint && channels == 2), "positional embedding with endpoint needs at least 4 channels");
}

torch::Tensor PositionalEmbeddingImpl::forward(const torch::Tensor& x) {
  const int64_t half = channels / 2;
  // Frequencies (1/max_positions)^(i / (half - endpoint)), i = 0..half-1: endpoint=True reaches 1/max_positions.
  torch::Tensor freqs = torch::arange(0, half, torch::TensorOptions().dtype(torch::kFloat32).device(x.device()));
  freqs = freqs / static_cast<double>(half - (endpoint ? 1 : 0));
  freqs = torch::pow(1.0 / max_positions, freqs);
  torch::Tensor angles = torch::outer(x, freqs.to(x.dtype()));
  return torch::cat({angles.cos(), angles.sin()}, 1);
}

FourierEmbeddingImpl::FourierEmbeddingImpl(int64_t channels, double scale) {
  require(channels >= 2 && channels % 2 == 0, "Fourier embedding needs an even number of channels, got ", channels);
  charge_parameter_values({channels / 2});
  freqs = register_buffer("freqs", torch::randn({channels / 2}) * scale);
}

torch::Tensor FourierEmbeddingImpl::forward(const torch::Tensor& x) {
  torch::Tensor angles = torch::outer(x, (freqs * (2 * M_PI)).to(x.dtype()));
  return torch::cat({angles.cos(), angles.sin()}, 1);
}

}  // namespace onestep
