#pragma once
// A time-conditioned MLP for 2-D toy data: the noise label is embedded like DDPM++ (positional, swapped to
// [sin | cos]) and mapped to a conditioning vector that is added before every hidden layer.
#include "config/config.h"
#include "networks/embeddings.h"
#include "networks/layers.h"
#include "networks/network.h"

#include <torch/nn/modules/container/modulelist.h>

namespace onestep {

// The [model] section when arch = "mlp".
struct MlpConfig {
  int64_t in_dim = 2;
  int64_t hidden = 256;
  int64_t num_layers = 4;        // hidden layers
  int64_t noise_channels = 64;   // positional embedding width
  int64_t label_dim = 0;
  double dropout = 0.0;
  double max_positions = 10000.0;
  // The input layer's initialisation. Xavier (EDM's default) gives a 2 -> 256 layer weights of std 0.09, so the
  // point's features start ~8x smaller than the noise embedding they are added to and the network starts almost
  // linear in x; "kaiming_uniform" (std 1 / sqrt(fan_in)) gives them unit scale (docs/points-suite.md).
  std::string input_init = "xavier_uniform";
  // Coordinates encoded as [x, sin(2^k x), cos(2^k x)], k = 0..input_frequencies-1 (NeRF's positional encoding),
  // before the input layer: lets the MLP resolve thin structures of width ~2^-k (0 = the plain coordinates).
  int64_t input_frequencies = 0;
  // Time inputs: 1 (sigma or t), or 2 for MeanFlow's u(z, r, t), which sees (t, t - r), each embedded like the
  // first and concatenated before map_layer0 (py-meanflow meanflow/models/unet.py:370-374).
  int64_t time_inputs = 1;
  int64_t input_features() const { return in_dim * (1 + 2 * input_frequencies); }
  static MlpConfig from_config(const Json& root);
  Json to_json() const;
  std::string describe() const;
  // Throws naming the key (model.num_layers, hidden, in_dim, noise_channels, label_dim) the stored tensors
  // contradict; see check_network_against_stored.
  void check_against(const StoredShapes& stored) const;
};

// [x, sin(2^k x), cos(2^k x) for k < frequencies] along dim 1 ([B, in_dim (1 + 2 frequencies)]); x itself when 0.
torch::Tensor encode_input(const torch::Tensor& x, int64_t frequencies);

class MlpImpl : public NetworkImpl {
 public:
  explicit MlpImpl(const MlpConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise_labels,
                        const torch::Tensor& class_labels = {}, const torch::Tensor& augment_labels = {}) override;
  int64_t forward_macs() const override;
  const MlpConfig& config() const { return config_; }

 private:
  MlpConfig config_;
  PositionalEmbedding map_noise{nullptr};
  Linear map_label{nullptr}, map_layer0{nullptr}, map_layer1{nullptr}, input{nullptr}, output{nullptr};
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace onestep
