#pragma once
// Noise-level embeddings of EDM's SongUNet: sinusoidal positional (DDPM++, Transformer-style frequencies) and
// random Fourier features (NCSN++; EDM draws frequencies with scale 16, iCT uses 0.02). Both return
// [cos | sin] halves like EDM; SongUNet swaps them to [sin | cos] afterwards, as EDM does.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>

namespace onestep {

class PositionalEmbeddingImpl : public torch::nn::Module {
 public:
  PositionalEmbeddingImpl(int64_t channels, double max_positions, bool endpoint);
  torch::Tensor forward(const torch::Tensor& x);  // [B] -> [B, channels]
  int64_t channels;
  double max_positions;
  bool endpoint;
};
TORCH_MODULE(PositionalEmbedding);

class FourierEmbeddingImpl : public torch::nn::Module {
 public:
  FourierEmbeddingImpl(int64_t channels, double scale);
  torch::Tensor forward(const torch::Tensor& x);  // [B] -> [B, channels]
  torch::Tensor freqs;                             // buffer "freqs", part of the state dict as in EDM
};
TORCH_MODULE(FourierEmbedding);

// The mapping network's input: the embedding of each time input, swapped from [cos | sin] to [sin | cos] as EDM's
// SongUNet does, concatenated. `labels` is [B] with time_inputs = 1, or [B, time_inputs]: MeanFlow's (t, t - r), each
// column embedded by the same embedding (py-meanflow meanflow/models/unet.py:370-374). [B, time_inputs * C].
torch::Tensor embed_time_inputs(const std::function<torch::Tensor(const torch::Tensor&)>& embed,
                                const torch::Tensor& labels, int64_t time_inputs);

}  // namespace onestep
