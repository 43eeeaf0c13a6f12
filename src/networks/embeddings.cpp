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

torch::Tensor embed_time_inputs(const std::function<torch::Tensor(const torch::Tensor&)>& embed,
                                const torch::Tensor& labels, int64_t time_inputs) {
  const bool one = time_inputs == 1 && labels.dim() == 1;
  require(one || (labels.dim() == 2 && labels.size(1) == time_inputs), "the network takes ", time_inputs,
          " time input(s) (model.time_inputs): noise labels must be ",
          time_inputs == 1 ? std::string("[B]") : "[B, " + std::to_string(time_inputs) + "]", ", got ", labels.sizes());
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < time_inputs; ++i) {
    torch::Tensor emb = embed(one ? labels : labels.select(1, i));
    parts.push_back(emb.reshape({emb.size(0), 2, -1}).flip(1).reshape(emb.sizes()));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 1);
}

}  // namespace onestep
