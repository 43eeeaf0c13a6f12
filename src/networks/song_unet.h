#pragma once
// EDM's SongUNet: the DDPM++ and NCSN++ architectures of Song et al. (2021) as reimplemented by Karras et al.
// (2022). Submodule names reproduce EDM's state-dict keys ("map_layer0", "enc.32x32_block0.conv0", ...).
#include "config/config.h"
#include "networks/embeddings.h"
#include "networks/layers.h"
#include "networks/network.h"
#include "networks/unet_block.h"

#include <torch/nn/modules/container/moduledict.h>

#include <string>
#include <vector>

namespace onestep {

// The [model] section when arch = "songunet". `variant` picks EDM's train.py option set (ddpmpp: positional /
// standard / standard / [1,1] / noise mult 1; ncsnpp: fourier / residual / standard / [1,3,3,1] / noise mult 2);
// each of those options can still be set individually.
struct SongUNetConfig {
  std::string variant = "ddpmpp";
  int64_t img_resolution = 32;
  int64_t img_channels = 3;
  int64_t label_dim = 0;
  int64_t augment_dim = 0;
  int64_t model_channels = 128;
  std::vector<int64_t> channel_mult = {2, 2, 2};
  int64_t channel_mult_emb = 4;
  int64_t num_blocks = 4;
  std::vector<int64_t> attn_resolutions = {16};
  double dropout = 0.10;
  double label_dropout = 0.0;
  std::string embedding_type = "positional";  // positional | fourier
  int64_t channel_mult_noise = 1;
  std::string encoder_type = "standard";  // standard | skip | residual
  std::string decoder_type = "standard";  // standard | skip
  std::vector<double> resample_filter = {1, 1};
  double fourier_scale = 16.0;     // EDM's FourierEmbedding default; iCT uses 0.02
  double max_positions = 10000.0;  // positional embedding (endpoint = true, as in SongUNet)
  // 1, or 2 for MeanFlow's u(z, r, t): (t, t - r) embedded alike and concatenated before map_layer0, the label and
  // augment maps as wide (py-meanflow meanflow/models/unet.py:309-312, 370-374).
  int64_t time_inputs = 1;

  static SongUNetConfig from_config(const Json& root);  // reads [model] (arch = "songunet")
  Json to_json() const;
  // "32x32: 256 ch, 4 blocks, attention no" etc., one line per resolution.
  std::string describe() const;
  // Throws naming the key (model.img_resolution, img_channels, model_channels, channel_mult, num_blocks,
  // attn_resolutions, channel_mult_emb, channel_mult_noise, label_dim, augment_dim) the stored tensors contradict;
  // see check_network_against_stored.
  void check_against(const StoredShapes& stored) const;
};

class SongUNetImpl : public NetworkImpl {
 public:
  explicit SongUNetImpl(const SongUNetConfig& config);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise_labels,
                        const torch::Tensor& class_labels = {}, const torch::Tensor& augment_labels = {}) override;
  int64_t forward_macs() const override;
  const SongUNetConfig& config() const { return config_; }

 private:
  enum class Kind { Conv, Block, AuxDown, AuxSkip, AuxResidual, AuxUp, AuxNorm, AuxConv };
  struct Step {
    Kind kind;
    std::string name;
    std::shared_ptr<torch::nn::Module> module;
  };
  void add(torch::nn::ModuleDict& dict, std::vector<Step>& steps, Kind kind, const std::string& name,
           std::shared_ptr<torch::nn::Module> module);
  // The constructor's parts, in EDM's order (the parameter order of its state dict).
  void build_mapping();
  std::vector<int64_t> build_encoder();  // returns the channels of each skip connection, in order
  void build_decoder(std::vector<int64_t> skips);
  std::shared_ptr<torch::nn::Module> make_block(int64_t cin, int64_t cout, bool up, bool down, bool attention) const;
  std::shared_ptr<torch::nn::Module> make_conv(int64_t cin, int64_t cout, int64_t kernel, bool up, bool down,
                                               bool fused, bool zero_init) const;
  bool has_attention(int64_t resolution) const;

  SongUNetConfig config_;
  torch::nn::ModuleHolder<PositionalEmbeddingImpl> map_noise_positional_{nullptr};
  torch::nn::ModuleHolder<FourierEmbeddingImpl> map_noise_fourier_{nullptr};
  Linear map_label_{nullptr}, map_augment_{nullptr}, map_layer0_{nullptr}, map_layer1_{nullptr};
  torch::nn::ModuleDict enc_{nullptr}, dec_{nullptr};
  std::vector<Step> enc_steps_, dec_steps_;
};
TORCH_MODULE(SongUNet);

}  // namespace onestep
