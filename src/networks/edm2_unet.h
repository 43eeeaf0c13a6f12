#pragma once
// EDM2's magnitude-preserving U-Net (Karras et al. 2024, training/networks_edm2.py, Fig. 21), in the variant ECT's
// ImageNet branch trains (locuslab/ect, branch imgnet, training/networks_edm2.py): identical forward pass, plus
// dropout_res (dropout only in blocks at resolutions <= dropout_res) and forced weight normalisation skipped in
// passes without gradients. Submodule names equal EDM2's state-dict keys ("enc.64x64_block0.conv_res0.weight").
#include "config/config.h"
#include "networks/mp_layers.h"
#include "networks/network.h"

#include <torch/nn/modules/container/moduledict.h>

#include <string>
#include <vector>

namespace onestep {

// The [model] section when arch = "edm2". `size` picks EDM2's ImageNet-64 width (train_edm2.py presets
// edm2-img64-{xs,s,m,l,xl}: model_channels 128/192/256/320/384); every other default is EDM2's UNet default.
struct Edm2UNetConfig {
  std::string size = "s";
  int64_t img_resolution = 64;
  int64_t img_channels = 3;
  int64_t label_dim = 1000;
  int64_t model_channels = 192;
  std::vector<int64_t> channel_mult = {1, 2, 3, 4};
  int64_t channel_mult_noise = 1;  // noise embedding width / model_channels; EDM2's None = channel_mult[0]
  int64_t channel_mult_emb = 4;    // embedding width / model_channels; EDM2's None = max(channel_mult)
  int64_t num_blocks = 3;
  std::vector<int64_t> attn_resolutions = {16, 8};
  double label_balance = 0.5;   // noise (0) vs class (1) embedding
  double concat_balance = 0.5;  // skip connection (0) vs main path (1)
  double res_balance = 0.3;     // main (0) vs residual branch (1)
  double attn_balance = 0.3;    // main (0) vs self-attention (1)
  double clip_act = 256;        // clip block outputs to [-clip_act, clip_act]; 0 = no clipping
  int64_t channels_per_head = 64;
  double dropout = 0.0;
  int64_t dropout_res = 0;  // ECT: dropout only at resolutions <= dropout_res; 0 = everywhere
  std::vector<double> resample_filter = {1, 1};

  static Edm2UNetConfig from_config(const Json& root);  // reads [model] (arch = "edm2")
  Json to_json() const;
  std::string describe() const;
  // Throws naming the key the stored tensors contradict (see check_network_against_stored).
  void check_against(const StoredShapes& stored) const;
};

// One encoder or decoder block (Fig. 21): resampling, (encoder) 1x1 skip projection and pixel norm, a residual
// branch of two 3x3 MPConvs modulated by the embedding, mp_sum, optional self-attention, activation clipping.
struct Edm2BlockOptions {
  int64_t in_channels = 0, out_channels = 0, emb_channels = 0;
  bool decoder = false;
  Resample resample = Resample::Keep;
  bool attention = false;
  const Edm2UNetConfig* config = nullptr;
  double dropout = 0.0;
};

class Edm2BlockImpl : public torch::nn::Module {
 public:
  explicit Edm2BlockImpl(const Edm2BlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  int64_t macs(int64_t& res) const;  // for one sample at input resolution `res`, updated to the output's
  int64_t in_channels() const { return in_channels_; }
  int64_t out_channels() const { return out_channels_; }

 private:
  torch::Tensor attention(const torch::Tensor& x);
  int64_t in_channels_, out_channels_, num_heads_;
  bool decoder_;
  Resample resample_;
  std::vector<double> filter_;
  double dropout_, res_balance_, attn_balance_, clip_act_;
  torch::Tensor emb_gain_;
  MPConv conv_res0_{nullptr}, emb_linear_{nullptr}, conv_res1_{nullptr}, conv_skip_{nullptr};
  MPConv attn_qkv_{nullptr}, attn_proj_{nullptr};
};
TORCH_MODULE(Edm2Block);

class Edm2UNetImpl : public NetworkImpl {
 public:
  explicit Edm2UNetImpl(const Edm2UNetConfig& config);
  // augment_labels are not used (EDM2 trains without augmentation conditioning); refused when given.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise_labels,
                        const torch::Tensor& class_labels = {}, const torch::Tensor& augment_labels = {}) override;
  int64_t forward_macs() const override;
  const Edm2UNetConfig& config() const { return config_; }

 private:
  struct Step {
    std::string name;
    MPConv conv{nullptr};        // the encoder's first convolution
    Edm2Block block{nullptr};
  };
  Edm2UNetConfig config_;
  torch::Tensor out_gain_;
  MPFourier emb_fourier_{nullptr};
  MPConv emb_noise_{nullptr}, emb_label_{nullptr}, out_conv_{nullptr};
  torch::nn::ModuleDict enc_{nullptr}, dec_{nullptr};
  std::vector<Step> enc_steps_, dec_steps_;
};
TORCH_MODULE(Edm2UNet);

}  // namespace onestep
