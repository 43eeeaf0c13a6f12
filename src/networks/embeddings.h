#pragma once
// Noise-level embeddings of EDM's SongUNet: sinusoidal positional (DDPM++, Transformer-style frequencies) and
// random Fourier features (NCSN++; EDM draws frequencies with scale 16, iCT uses 0.02). Both return
// [cos | sin] halves like EDM; SongUNet swaps them to [sin | cos] afterwards, as EDM does.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

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

}  // namespace onestep
