#include "networks/adm_unet.h"

#include "core/error.h"
#include "networks/layers.h"
#include "networks/mp_layers.h"

#include <algorithm>
#include <cmath>

namespace onestep {
namespace {

// An empty module registered under `name`: the numbered containers (nn.Sequential, nn.ModuleList) of the release,
// so that names come out as "input_blocks.1.0.in_layers.2.weight".
std::shared_ptr<torch::nn::Module> container(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

// PyTorch's default init of nn.Conv2d / nn.Linear: kaiming_uniform(a = sqrt(5)) for the weight and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias, both with bound 1/sqrt(fan_in).
torch::Tensor default_init(at::IntArrayRef shape, int64_t fan_in, bool zero) {
  charge_parameter_values(shape);
  if (zero) return torch::zeros(shape, mp_init_options());
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  return (torch::rand(shape, mp_init_options()) * 2 - 1) * bound;
}

bool has_attention(const AdmUNetConfig& c, int64_t res) {
  return std::count(c.attn_resolutions.begin(), c.attn_resolutions.end(), res) > 0;
}

void validate(const AdmUNetConfig& c) {
  require(c.img_channels >= 1 && c.label_dim >= 0, "config: model.img_channels must be >= 1, label_dim >= 0");
  require(c.model_channels >= 2 && c.model_channels % 2 == 0,
          "config: model.model_channels must be even and >= 2 (the sinusoidal time embedding), got ", c.model_channels);
  require(!c.channel_mult.empty() && c.channel_mult.size() < 31, "config: model.channel_mult must have 1..30 entries");
  for (int64_t m : c.channel_mult)
    require(m >= 1 && (c.model_channels * m) % 32 == 0, "config: model.model_channels * channel_mult must be a ",
            "multiple of 32 (GroupNorm with 32 groups), got ", c.model_channels * m);
  require(c.num_res_blocks >= 1, "config: model.num_res_blocks must be >= 1, got ", c.num_res_blocks);
  const auto levels = static_cast<int64_t>(c.channel_mult.size());
  require(c.img_resolution >= 1 && c.img_resolution % (int64_t{1} << (levels - 1)) == 0,
          "config: model.img_resolution ", c.img_resolution, " must be divisible by 2^(levels-1) = ",
          int64_t{1} << (levels - 1));
  require(c.num_head_channels >= 1, "config: model.num_head_channels must be >= 1");
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t res = c.img_resolution >> level, channels = c.model_channels * c.channel_mult[level];
    const bool attention = has_attention(c, res) || level == levels - 1;  // the middle block always attends
    require(!attention || channels % c.num_head_channels == 0, "config: model.num_head_channels = ",
            c.num_head_channels, " must divide the ", channels, " channels of the attention at ", res, "x", res);
  }
  require(c.dropout >= 0 && c.dropout < 1, "config: model.dropout must be in [0, 1), got ", c.dropout);
  require(std::isfinite(c.noise_label_scale) && c.noise_label_scale > 0,
          "config: model.noise_label_scale must be a positive number, got ", c.noise_label_scale);
}

// The release's float32 islands (GroupNorm32, the attention softmax) for half-precision activations; float64 stays
// float64 (the JVP tests compare with finite differences in float64).
torch::ScalarType at_least_float32(const torch::Tensor& x) {
  return x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
}

// cm/nn.py timestep_embedding: [cos(t f) | sin(t f)], f_i = exp(-ln(10000) i / half), in the release's order of
// operations, in float32 as the release (float64 when t is: the JVP checks against finite differences).
torch::Tensor timestep_embedding(const torch::Tensor& t, int64_t dim) {
  const int64_t half = dim / 2;
  const auto dtype = at_least_float32(t);
  torch::Tensor freqs =
      (torch::arange(0, half, t.options().dtype(dtype)) * -std::log(10000.0) / static_cast<double>(half)).exp();
  torch::Tensor args = t.to(dtype).unsqueeze(1) * freqs.unsqueeze(0);
  return torch::cat({args.cos(), args.sin()}, -1);
}

torch::Tensor resample(const torch::Tensor& x, AdmResample mode) {
  if (mode == AdmResample::Down) return torch::avg_pool2d(x, {2, 2}, {2, 2});
  if (mode == AdmResample::Up) return x.repeat_interleave(2, 2).repeat_interleave(2, 3);  // F.interpolate nearest, x2
  return x;
}

}  // namespace

AdmUNetConfig AdmUNetConfig::from_config(const Json& root) {
  SectionReader r(root, "model");
  r.get_string("arch", "adm", {"adm"});
  AdmUNetConfig c;
  c.img_resolution = r.get_int("img_resolution", c.img_resolution);
  c.img_channels = r.get_int("img_channels", c.img_channels);
  c.label_dim = r.get_int("label_dim", c.label_dim);
  c.model_channels = r.get_int("model_channels", c.model_channels);
  c.channel_mult = r.get_ints("channel_mult", c.channel_mult);
  c.num_res_blocks = r.get_int("num_res_blocks", c.num_res_blocks);
  c.attn_resolutions = r.get_ints("attn_resolutions", c.attn_resolutions);
  c.num_head_channels = r.get_int("num_head_channels", c.num_head_channels);
  c.dropout = r.get_float("dropout", c.dropout);
  c.use_scale_shift_norm = r.get_bool("use_scale_shift_norm", c.use_scale_shift_norm);
  c.noise_label_scale = r.get_float("noise_label_scale", c.noise_label_scale);
  r.finish();
  validate(c);
  return c;
}

Json AdmUNetConfig::to_json() const {
  return Json{{"arch", "adm"},
              {"img_resolution", img_resolution},
              {"img_channels", img_channels},
              {"label_dim", label_dim},
              {"model_channels", model_channels},
              {"channel_mult", channel_mult},
              {"num_res_blocks", num_res_blocks},
              {"attn_resolutions", attn_resolutions},
              {"num_head_channels", num_head_channels},
              {"dropout", dropout},
              {"use_scale_shift_norm", use_scale_shift_norm},
              {"noise_label_scale", noise_label_scale}};
}

void AdmUNetConfig::check_against(const StoredShapes& stored) const {
  const auto* s = stored_shape(stored, "input_blocks.0.0.weight");
  if (s == nullptr) return;  // the name-by-name check reports what is missing
  require(s->size() == 4 && (*s)[1] == img_channels, "model.img_channels = ", img_channels,
          ", but the stored input_blocks.0.0.weight has shape ", shape_text(*s));
  require((*s)[0] == model_channels * channel_mult.front(), "model.model_channels = ", model_channels,
          " and channel_mult[0] = ", channel_mult.front(), ", but the stored input_blocks.0.0.weight has shape ",
          shape_text(*s));
  const auto blocks = stored_name_numbers(stored, "input_blocks.", '.');
  const auto expected = static_cast<int64_t>(channel_mult.size()) * (num_res_blocks + 1);
  require(static_cast<int64_t>(blocks.size()) == expected, "model.channel_mult and num_res_blocks give ", expected,
          " input blocks, but the file stores ", blocks.size());
  const auto* l = stored_shape(stored, "label_emb.weight");
  require((l != nullptr) == (label_dim > 0), "model.label_dim = ", label_dim, ", but the file ",
          l ? "stores" : "lacks", " label_emb.weight");
  if (l && l->size() == 2)
    require((*l)[0] == label_dim, "model.label_dim = ", label_dim, ", but the stored label_emb.weight has shape ",
            shape_text(*l));
}

AdmConvImpl::AdmConvImpl(int64_t in_channels, int64_t out_channels, int64_t kernel, bool zero) {
  const int64_t fan_in = in_channels * kernel * kernel;
  weight = register_parameter("weight", default_init({out_channels, in_channels, kernel, kernel}, fan_in, zero));
  bias = register_parameter("bias", default_init({out_channels}, fan_in, zero));
}

torch::Tensor AdmConvImpl::forward(const torch::Tensor& x) {
  const int64_t pad = weight.size(-1) / 2;
  return torch::conv2d(x, weight.to(x.dtype()), bias.to(x.dtype()), std::vector<int64_t>{1, 1},
                       std::vector<int64_t>{pad, pad});
}

AdmLinearImpl::AdmLinearImpl(int64_t in_features, int64_t out_features) {
  weight = register_parameter("weight", default_init({out_features, in_features}, in_features, false));
  bias = register_parameter("bias", default_init({out_features}, in_features, false));
}

torch::Tensor AdmLinearImpl::forward(const torch::Tensor& x) {
  return torch::matmul(x, weight.to(x.dtype()).t()) + bias.to(x.dtype());
}

AdmNormImpl::AdmNormImpl(int64_t channels) {
  charge_parameter_values({2, channels});
  weight = register_parameter("weight", torch::ones({channels}, mp_init_options()));
  bias = register_parameter("bias", torch::zeros({channels}, mp_init_options()));
}

torch::Tensor AdmNormImpl::forward(const torch::Tensor& x) {
  const auto dtype = at_least_float32(x);
  return torch::group_norm(x.to(dtype), 32, weight.to(dtype), bias.to(dtype), 1e-5).to(x.dtype());
}

AdmResBlockImpl::AdmResBlockImpl(int64_t in_channels, int64_t out_channels, int64_t emb_channels,
                                 const AdmUNetConfig& config, AdmResample resample)
    : resample_(resample), scale_shift_(config.use_scale_shift_norm), dropout_(config.dropout) {
  auto in_layers = container(*this, "in_layers");
  in_norm_ = in_layers->register_module("0", AdmNorm(in_channels));
  in_conv_ = in_layers->register_module("2", AdmConv(in_channels, out_channels, 3));
  auto emb_layers = container(*this, "emb_layers");
  emb_linear_ = emb_layers->register_module("1", AdmLinear(emb_channels, (scale_shift_ ? 2 : 1) * out_channels));
  auto out_layers = container(*this, "out_layers");
  out_norm_ = out_layers->register_module("0", AdmNorm(out_channels));
  out_conv_ = out_layers->register_module("3", AdmConv(out_channels, out_channels, 3, /*zero=*/true));
  if (in_channels != out_channels) skip_ = register_module("skip_connection", AdmConv(in_channels, out_channels, 1));
}

torch::Tensor AdmResBlockImpl::forward(const torch::Tensor& input, const torch::Tensor& emb) {
  // Resampling sits between the activation and the convolution (cm/unet.py ResBlock._forward, updown branch).
  torch::Tensor h = in_conv_->forward(resample(torch::silu(in_norm_->forward(input)), resample_));
  const torch::Tensor x = resample(input, resample_);
  torch::Tensor e = emb_linear_->forward(torch::silu(emb)).to(h.dtype()).unsqueeze(2).unsqueeze(3);
  if (scale_shift_) {
    auto scale_shift = e.chunk(2, 1);
    h = out_norm_->forward(h) * (1 + scale_shift[0]) + scale_shift[1];
  } else {
    h = out_norm_->forward(h + e);
  }
  h = torch::silu(h);
  if (is_training() && dropout_ > 0) h = torch::dropout(h, dropout_, true);
  h = out_conv_->forward(h);
  return (skip_ ? skip_->forward(x) : x) + h;
}

int64_t AdmResBlockImpl::macs(int64_t& res) const {
  if (resample_ == AdmResample::Down) res /= 2;  // both convolutions run at the output resolution
  if (resample_ == AdmResample::Up) res *= 2;
  return in_conv_->macs(res) + emb_linear_->weight.numel() + out_conv_->macs(res) + (skip_ ? skip_->macs(res) : 0);
}

AdmAttentionImpl::AdmAttentionImpl(int64_t channels, int64_t head_channels)
    : channels_(channels), heads_(channels / head_channels) {
  norm_ = register_module("norm", AdmNorm(channels));
  qkv_ = register_module("qkv", AdmConv(channels, 3 * channels, 1));
  proj_out_ = register_module("proj_out", AdmConv(channels, channels, 1, /*zero=*/true));
}

torch::Tensor AdmAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), t = x.size(2) * x.size(3);
  // [B, (three, heads, d), H, W] -> q, k, v [B, heads, d, T] (the release's "b (three h d) s" rearrange).
  auto qkv = qkv_->forward(norm_->forward(x)).reshape({b, 3, heads_, channels_ / heads_, t}).unbind(1);
  const double scale = 1 / std::sqrt(static_cast<double>(channels_ / heads_));
  torch::Tensor w = torch::matmul(qkv[0].transpose(2, 3), qkv[1]) * scale;  // [B, heads, query, key]
  w = w.to(at_least_float32(w)).softmax(3).to(x.dtype());                   // softmax in float32 as the release
  torch::Tensor a = torch::matmul(qkv[2], w.transpose(2, 3));                // [B, heads, d, query]
  return x + proj_out_->forward(a.reshape(x.sizes()));
}

int64_t AdmAttentionImpl::macs(int64_t res) const {
  return qkv_->macs(res) + proj_out_->macs(res) + 2 * res * res * res * res * channels_;
}

AdmUNetImpl::AdmUNetImpl(const AdmUNetConfig& config) : config_(config) {
  const auto& c = config_;
  const int64_t emb = 4 * c.model_channels;
  auto time_embed = container(*this, "time_embed");
  time0_ = time_embed->register_module("0", AdmLinear(c.model_channels, emb));
  time2_ = time_embed->register_module("2", AdmLinear(emb, emb));
  if (c.label_dim) {
    charge_parameter_values({c.label_dim, emb});
    label_weight_ = container(*this, "label_emb")
                        ->register_parameter("weight", torch::randn({c.label_dim, emb}, mp_init_options()));
  }
  auto inputs = container(*this, "input_blocks");
  auto outputs = container(*this, "output_blocks");
  // Registers one TimestepEmbedSequential entry of `list`, its layers numbered from 0.
  auto add = [](torch::nn::Module& list, std::vector<Stage>& stages, Stage stage) {
    auto entry = container(list, std::to_string(stages.size()));
    for (size_t i = 0; i < stage.size(); ++i) {
      const std::string name = std::to_string(i);
      if (stage[i].conv) entry->register_module(name, stage[i].conv);
      if (stage[i].res) entry->register_module(name, stage[i].res);
      if (stage[i].attn) entry->register_module(name, stage[i].attn);
    }
    stages.push_back(std::move(stage));
  };
  auto res_block = [&](int64_t cin, int64_t cout, AdmResample r = AdmResample::Keep) {
    Layer layer;
    layer.res = AdmResBlock(cin, cout, emb, c, r);
    return layer;
  };
  auto attention = [&](int64_t ch) {
    Layer layer;
    layer.attn = AdmAttention(ch, c.num_head_channels);
    return layer;
  };
  int64_t ch = c.model_channels * c.channel_mult.front();
  Stage first(1);
  first[0].conv = AdmConv(c.img_channels, ch, 3);
  add(*inputs, input_, std::move(first));
  std::vector<int64_t> skips = {ch};
  const auto levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = 0; level < levels; ++level) {
    const int64_t res = c.img_resolution >> level, width = c.model_channels * c.channel_mult[level];
    for (int64_t i = 0; i < c.num_res_blocks; ++i) {
      Stage stage;
      stage.push_back(res_block(ch, width));
      ch = width;
      if (has_attention(c, res)) stage.push_back(attention(ch));
      add(*inputs, input_, std::move(stage));
      skips.push_back(ch);
    }
    if (level + 1 < levels) {
      Stage down;
      down.push_back(res_block(ch, ch, AdmResample::Down));
      add(*inputs, input_, std::move(down));
      skips.push_back(ch);
    }
  }
  middle_.push_back(res_block(ch, ch));
  middle_.push_back(attention(ch));
  middle_.push_back(res_block(ch, ch));
  auto middle = container(*this, "middle_block");
  middle->register_module("0", middle_[0].res);
  middle->register_module("1", middle_[1].attn);
  middle->register_module("2", middle_[2].res);
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t res = c.img_resolution >> level, width = c.model_channels * c.channel_mult[level];
    for (int64_t i = 0; i <= c.num_res_blocks; ++i) {
      Stage stage;
      stage.push_back(res_block(ch + skips.back(), width));
      skips.pop_back();
      ch = width;
      if (has_attention(c, res)) stage.push_back(attention(ch));
      if (level > 0 && i == c.num_res_blocks) stage.push_back(res_block(ch, ch, AdmResample::Up));
      add(*outputs, output_, std::move(stage));
    }
  }
  auto out = container(*this, "out");
  out_norm_ = out->register_module("0", AdmNorm(ch));
  out_conv_ = out->register_module("2", AdmConv(ch, c.img_channels, 3, /*zero=*/true));
}

torch::Tensor AdmUNetImpl::run(Stage& stage, torch::Tensor x, const torch::Tensor& emb) {
  for (auto& layer : stage) {
    if (layer.conv) x = layer.conv->forward(x);
    if (layer.res) x = layer.res->forward(x, emb);
    if (layer.attn) x = layer.attn->forward(x);
  }
  return x;
}

torch::Tensor AdmUNetImpl::forward(const torch::Tensor& input, const torch::Tensor& noise_labels,
                                   const torch::Tensor& class_labels, const torch::Tensor& augment_labels) {
  const auto& c = config_;
  require(input.dim() == 4 && input.size(1) == c.img_channels && input.size(2) == c.img_resolution &&
              input.size(3) == c.img_resolution,
          "ADM U-Net expects input [B, ", c.img_channels, ", ", c.img_resolution, ", ", c.img_resolution, "], got ",
          input.sizes());
  require(!augment_labels.defined(), "the ADM U-Net takes no augmentation labels");
  require(noise_labels.dim() == 1, "ADM U-Net takes one time input per sample ([B] noise labels)");
  torch::Tensor emb = timestep_embedding(noise_labels * c.noise_label_scale, c.model_channels).to(input.dtype());
  emb = time2_->forward(torch::silu(time0_->forward(emb)));
  if (label_weight_.defined()) {
    require(class_labels.defined() && class_labels.dim() == 2 && class_labels.size(1) == c.label_dim,
            "ADM U-Net with label_dim ", c.label_dim, " needs class labels [B, ", c.label_dim, "]");
    // One-hot rows times the table: the release's nn.Embedding lookup, exact for one-hot labels.
    emb = emb + torch::matmul(class_labels.to(emb.dtype()), label_weight_.to(emb.dtype()));
  }
  std::vector<torch::Tensor> skips;
  torch::Tensor x = input;
  for (auto& stage : input_) {
    x = run(stage, x, emb);
    skips.push_back(x);
  }
  x = run(middle_, x, emb);
  for (auto& stage : output_) {
    x = run(stage, torch::cat({x, skips.back()}, 1), emb);
    skips.pop_back();
  }
  return out_conv_->forward(torch::silu(out_norm_->forward(x)));
}

int64_t AdmUNetImpl::stage_macs(const Stage& stage, int64_t& res) const {
  int64_t total = 0;
  for (const auto& layer : stage) {
    if (layer.conv) total += layer.conv->macs(res);
    if (layer.res) total += layer.res->macs(res);
    if (layer.attn) total += layer.attn->macs(res);
  }
  return total;
}

int64_t AdmUNetImpl::forward_macs() const {
  int64_t total = time0_->weight.numel() + time2_->weight.numel();
  int64_t res = config_.img_resolution;
  for (const auto& stage : input_) total += stage_macs(stage, res);
  total += stage_macs(middle_, res);
  for (const auto& stage : output_) total += stage_macs(stage, res);
  return total + out_conv_->macs(res);
}

}  // namespace onestep
