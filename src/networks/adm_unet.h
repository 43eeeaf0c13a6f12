#pragma once
// ADM, the U-Net of Dhariwal & Nichol 2021 as openai/consistency_models ships it (cm/unet.py UNetModel, the
// guided-diffusion network; docs/methods.md section 15): GroupNorm(32) + SiLU residual blocks with FiLM-like
// scale-shift conditioning, residual blocks that resample (avg-pool / nearest), multi-head self-attention at chosen
// resolutions, a sinusoidal time embedding of 1000 * c_noise and a learned class embedding. Parameter names equal
// the release's state-dict keys ("input_blocks.1.0.in_layers.2.weight"), so its .pt files convert by adding
// "model." (tools/convert_openai_cm.py).
#include "config/config.h"
#include "networks/network.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

namespace onestep {

// The [model] section when arch = "adm". Defaults: the ImageNet-64 network of the consistency-model release
// (scripts/launch.sh: --num_channels 192 --num_res_blocks 3 --attention_resolutions 32,16,8 --num_head_channels 64
// --use_scale_shift_norm True --resblock_updown True --class_cond True; cm/script_util.py channel_mult (1,2,3,4)
// for 64x64). iCT-deep doubles num_res_blocks (preset adm-img64-deep).
struct AdmUNetConfig {
  int64_t img_resolution = 64;
  int64_t img_channels = 3;
  int64_t label_dim = 1000;
  int64_t model_channels = 192;
  std::vector<int64_t> channel_mult = {1, 2, 3, 4};
  int64_t num_res_blocks = 3;
  std::vector<int64_t> attn_resolutions = {32, 16, 8};  // resolutions (not downsample rates) with attention
  int64_t num_head_channels = 64;
  double dropout = 0.0;
  bool use_scale_shift_norm = true;
  // The time input of the release: timestep_embedding(1000 * 0.25 ln(sigma)) (karras_diffusion.py denoise), i.e.
  // noise_label_scale times onestep's c_noise = ln(sigma) / 4.
  double noise_label_scale = 1000.0;

  static AdmUNetConfig from_config(const Json& root);  // reads [model] (arch = "adm")
  Json to_json() const;
  // Throws naming the key the stored tensors contradict (see check_network_against_stored).
  void check_against(const StoredShapes& stored) const;
};

// nn.Conv2d / nn.Linear / GroupNorm32 of the release with PyTorch's default initialisation (U(+-1/sqrt(fan_in)) for
// weight and bias) or zeros (the release's zero_module), created on the meta device while a MetaInit lives.
class AdmConvImpl : public torch::nn::Module {
 public:
  AdmConvImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, bool zero = false);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t macs(int64_t res) const { return res * res * weight.numel(); }
  torch::Tensor weight, bias;
};
TORCH_MODULE(AdmConv);

class AdmLinearImpl : public torch::nn::Module {
 public:
  AdmLinearImpl(int64_t in_features, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
};
TORCH_MODULE(AdmLinear);

// GroupNorm32: 32 groups, eps 1e-5, computed in float32 and cast back (cm/nn.py GroupNorm32).
class AdmNormImpl : public torch::nn::Module {
 public:
  explicit AdmNormImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;
};
TORCH_MODULE(AdmNorm);

enum class AdmResample { Keep, Down, Up };

// cm/unet.py ResBlock: in_layers (norm, SiLU, [resample], conv3x3), emb_layers (SiLU, linear), out_layers (norm
// [* (1 + scale) + shift], SiLU, dropout, zero conv3x3), skip_connection (1x1 conv when the width changes).
class AdmResBlockImpl : public torch::nn::Module {
 public:
  AdmResBlockImpl(int64_t in_channels, int64_t out_channels, int64_t emb_channels, const AdmUNetConfig& config,
                  AdmResample resample);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  int64_t macs(int64_t& res) const;  // for one sample at input resolution `res`, updated to the output's

 private:
  AdmResample resample_;
  bool scale_shift_;
  double dropout_;
  AdmNorm in_norm_{nullptr}, out_norm_{nullptr};
  AdmConv in_conv_{nullptr}, out_conv_{nullptr}, skip_{nullptr};
  AdmLinear emb_linear_{nullptr};
};
TORCH_MODULE(AdmResBlock);

// cm/unet.py AttentionBlock as the release runs it (QKVFlashAttention; its QKVAttentionLegacy was changed to the
// same layout): qkv channels ordered (q|k|v, head, channel), softmax(q.k / sqrt(d)) over keys, as plain matmul +
// softmax so that forward-mode AD goes through it.
class AdmAttentionImpl : public torch::nn::Module {
 public:
  AdmAttentionImpl(int64_t channels, int64_t head_channels);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t macs(int64_t res) const;

 private:
  int64_t channels_, heads_;
  AdmNorm norm_{nullptr};
  AdmConv qkv_{nullptr}, proj_out_{nullptr};
};
TORCH_MODULE(AdmAttention);

class AdmUNetImpl : public NetworkImpl {
 public:
  explicit AdmUNetImpl(const AdmUNetConfig& config);
  // noise_labels: c_noise = ln(sigma) / 4 (the network embeds noise_label_scale * c_noise); class_labels one-hot
  // [B, label_dim]; augment_labels are refused.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise_labels,
                        const torch::Tensor& class_labels = {}, const torch::Tensor& augment_labels = {}) override;
  int64_t forward_macs() const override;
  const AdmUNetConfig& config() const { return config_; }

 private:
  // One entry of input_blocks / output_blocks (TimestepEmbedSequential): its layers in order.
  struct Layer {
    AdmConv conv{nullptr};
    AdmResBlock res{nullptr};
    AdmAttention attn{nullptr};
  };
  using Stage = std::vector<Layer>;
  torch::Tensor run(Stage& stage, torch::Tensor x, const torch::Tensor& emb);
  int64_t stage_macs(const Stage& stage, int64_t& res) const;
  AdmUNetConfig config_;
  AdmLinear time0_{nullptr}, time2_{nullptr};
  torch::Tensor label_weight_;
  std::vector<Stage> input_, output_;
  Stage middle_;
  AdmNorm out_norm_{nullptr};
  AdmConv out_conv_{nullptr};
};
TORCH_MODULE(AdmUNet);

}  // namespace onestep
