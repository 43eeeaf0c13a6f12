#include "networks/edm2_unet.h"

#include "core/error.h"
#include "networks/layers.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace onestep {
namespace {

// EDM2 train_edm2.py config_presets edm2-img64-{xs,s,m,l,xl}: `channels`.
int64_t size_channels(const std::string& size) {
  if (size == "xs") return 128;
  if (size == "s") return 192;
  if (size == "m") return 256;
  if (size == "l") return 320;
  return 384;  // xl
}

std::string level_name(int64_t res) { return std::to_string(res) + "x" + std::to_string(res); }

void validate(const Edm2UNetConfig& c) {
  require(c.img_channels >= 1 && c.label_dim >= 0, "config: model.img_channels must be >= 1, label_dim >= 0");
  require(c.model_channels >= 1 && c.channel_mult_noise >= 1 && c.channel_mult_emb >= 1,
          "config: model.model_channels, channel_mult_noise and channel_mult_emb must be >= 1");
  require(!c.channel_mult.empty() && c.channel_mult.size() < 31, "config: model.channel_mult must have 1..30 entries");
  for (int64_t m : c.channel_mult) require(m >= 1, "config: model.channel_mult entries must be >= 1");
  require(c.num_blocks >= 1, "config: model.num_blocks must be >= 1, got ", c.num_blocks);
  const int64_t levels = static_cast<int64_t>(c.channel_mult.size());
  require(c.img_resolution >= 1 && c.img_resolution % (int64_t{1} << (levels - 1)) == 0,
          "config: model.img_resolution ", c.img_resolution, " must be divisible by 2^(levels-1) = ", int64_t{1} << (levels - 1));
  for (double b : {c.label_balance, c.concat_balance, c.res_balance, c.attn_balance})
    require(b >= 0 && b <= 1, "config: model.label_balance, concat_balance, res_balance and attn_balance must be "
                              "in [0, 1]");
  require(c.clip_act >= 0, "config: model.clip_act must be >= 0 (0 = no clipping), got ", c.clip_act);
  require(c.channels_per_head >= 1, "config: model.channels_per_head must be >= 1");
  for (size_t level = 0; level < c.channel_mult.size(); ++level) {
    const int64_t res = c.img_resolution >> level;
    const bool attention = level + 1 == c.channel_mult.size() ||
                           std::count(c.attn_resolutions.begin(), c.attn_resolutions.end(), res) > 0;
    const int64_t channels = c.model_channels * c.channel_mult[level];
    require(!attention || (channels % c.channels_per_head == 0 && channels >= c.channels_per_head),
            "config: model.channels_per_head = ", c.channels_per_head, " must divide the ", channels,
            " channels of the attention blocks at ", level_name(res));
  }
  require(c.dropout >= 0 && c.dropout < 1, "config: model.dropout must be in [0, 1), got ", c.dropout);
  require(c.dropout_res >= 0, "config: model.dropout_res must be >= 0 (0 = every resolution)");
  require(!c.resample_filter.empty() && c.resample_filter.size() % 2 == 0,
          "config: model.resample_filter must have an even, non-zero length (e.g. [1,1])");
}

}  // namespace

Edm2UNetConfig Edm2UNetConfig::from_config(const Json& root) {
  SectionReader r(root, "model");
  r.get_string("arch", "edm2", {"edm2"});
  Edm2UNetConfig c;
  c.size = r.get_string("size", c.size, {"xs", "s", "m", "l", "xl"});
  c.model_channels = r.get_int("model_channels", size_channels(c.size));
  c.img_resolution = r.get_int("img_resolution", c.img_resolution);
  c.img_channels = r.get_int("img_channels", c.img_channels);
  c.label_dim = r.get_int("label_dim", c.label_dim);
  c.channel_mult = r.get_ints("channel_mult", c.channel_mult);
  require(!c.channel_mult.empty(), "config: model.channel_mult must not be empty");
  // EDM2's None defaults: noise embedding as wide as the first level, final embedding as the widest level.
  c.channel_mult_noise = r.get_int("channel_mult_noise", c.channel_mult.front());
  c.channel_mult_emb = r.get_int("channel_mult_emb", *std::max_element(c.channel_mult.begin(), c.channel_mult.end()));
  c.num_blocks = r.get_int("num_blocks", c.num_blocks);
  c.attn_resolutions = r.get_ints("attn_resolutions", c.attn_resolutions);
  c.label_balance = r.get_float("label_balance", c.label_balance);
  c.concat_balance = r.get_float("concat_balance", c.concat_balance);
  c.res_balance = r.get_float("res_balance", c.res_balance);
  c.attn_balance = r.get_float("attn_balance", c.attn_balance);
  c.clip_act = r.get_float("clip_act", c.clip_act);
  c.channels_per_head = r.get_int("channels_per_head", c.channels_per_head);
  c.dropout = r.get_float("dropout", c.dropout);
  c.dropout_res = r.get_int("dropout_res", c.dropout_res);
  c.resample_filter = r.get_floats("resample_filter", c.resample_filter);
  r.finish();
  validate(c);
  return c;
}

Json Edm2UNetConfig::to_json() const {
  return Json{{"arch", "edm2"},
              {"size", size},
              {"img_resolution", img_resolution},
              {"img_channels", img_channels},
              {"label_dim", label_dim},
              {"model_channels", model_channels},
              {"channel_mult", channel_mult},
              {"channel_mult_noise", channel_mult_noise},
              {"channel_mult_emb", channel_mult_emb},
              {"num_blocks", num_blocks},
              {"attn_resolutions", attn_resolutions},
              {"label_balance", label_balance},
              {"concat_balance", concat_balance},
              {"res_balance", res_balance},
              {"attn_balance", attn_balance},
              {"clip_act", clip_act},
              {"channels_per_head", channels_per_head},
              {"dropout", dropout},
              {"dropout_res", dropout_res},
              {"resample_filter", resample_filter}};
}

std::string Edm2UNetConfig::describe() const {
  std::ostringstream out;
  out << "EDM2 magnitude-preserving U-Net: " << model_channels << " base channels, noise embedding "
      << model_channels * channel_mult_noise << " -> " << model_channels * channel_mult_emb << ", dropout " << dropout;
  if (dropout_res) out << " at <= " << level_name(dropout_res);
  if (label_dim) out << ", label_dim " << label_dim;
  out << "\n";
  for (size_t level = 0; level < channel_mult.size(); ++level) {
    const int64_t res = img_resolution >> level;
    const bool attn = std::count(attn_resolutions.begin(), attn_resolutions.end(), res) > 0;
    out << "  " << level_name(res) << ": " << model_channels * channel_mult[level] << " channels, " << num_blocks
        << " encoder + " << num_blocks + 1 << " decoder blocks, attention " << (attn ? "yes" : "no") << "\n";
  }
  return out.str();
}

void Edm2UNetConfig::check_against(const StoredShapes& stored) const {
  const std::string conv = "enc." + level_name(img_resolution) + "_conv.weight";
  const auto* s = stored_shape(stored, conv);
  if (s == nullptr) {
    const auto resolutions = stored_name_numbers(stored, "enc.", 'x');
    require(resolutions.empty() || *resolutions.rbegin() == img_resolution, "model.img_resolution = ", img_resolution,
            ", but the file's encoder starts at ", resolutions.empty() ? 0 : *resolutions.rbegin());
    return;  // the name-by-name check reports what is missing
  }
  require(s->size() == 4 && (*s)[1] == img_channels + 1, "model.img_channels = ", img_channels, ", but the stored ",
          conv, " has shape ", shape_text(*s), " (EDM2 adds a constant channel)");
  require((*s)[0] == model_channels * channel_mult.front(), "model.model_channels = ", model_channels,
          " and channel_mult[0] = ", channel_mult.front(), ", but the stored ", conv, " has shape ", shape_text(*s));
  const auto levels = stored_name_numbers(stored, "enc.", 'x');
  require(levels.size() == channel_mult.size(), "model.channel_mult has ", channel_mult.size(),
          " levels, but the file's encoder has ", levels.size(), " resolutions");
  if (const auto* e = stored_shape(stored, "emb_noise.weight"); e && e->size() == 2)
    require((*e)[0] == model_channels * channel_mult_emb && (*e)[1] == model_channels * channel_mult_noise,
            "model.channel_mult_noise / channel_mult_emb give ", model_channels * channel_mult_noise, " -> ",
            model_channels * channel_mult_emb, ", but the stored emb_noise.weight has shape ", shape_text(*e));
  const auto* l = stored_shape(stored, "emb_label.weight");
  require((l != nullptr) == (label_dim > 0), "model.label_dim = ", label_dim, ", but the file ",
          l ? "stores" : "lacks", " emb_label.weight");
  if (l && l->size() == 2)
    require((*l)[1] == label_dim, "model.label_dim = ", label_dim, ", but the stored emb_label.weight has shape ",
            shape_text(*l));
}

Edm2BlockImpl::Edm2BlockImpl(const Edm2BlockOptions& o)
    : in_channels_(o.in_channels),
      out_channels_(o.out_channels),
      num_heads_(o.attention ? o.out_channels / o.config->channels_per_head : 0),
      decoder_(o.decoder),
      resample_(o.resample),
      filter_(o.config->resample_filter),
      dropout_(o.dropout),
      res_balance_(o.config->res_balance),
      attn_balance_(o.config->attn_balance),
      clip_act_(o.config->clip_act) {
  charge_parameter_values({1});
  emb_gain_ = register_parameter("emb_gain", torch::zeros({}, mp_init_options()));
  conv_res0_ = register_module("conv_res0", MPConv(decoder_ ? in_channels_ : out_channels_, out_channels_, 3));
  emb_linear_ = register_module("emb_linear", MPConv(o.emb_channels, out_channels_, 0));
  conv_res1_ = register_module("conv_res1", MPConv(out_channels_, out_channels_, 3));
  if (in_channels_ != out_channels_) conv_skip_ = register_module("conv_skip", MPConv(in_channels_, out_channels_, 1));
  if (num_heads_) {
    attn_qkv_ = register_module("attn_qkv", MPConv(out_channels_, 3 * out_channels_, 1));
    attn_proj_ = register_module("attn_proj", MPConv(out_channels_, out_channels_, 1));
  }
}

torch::Tensor Edm2BlockImpl::forward(const torch::Tensor& input, const torch::Tensor& emb) {
  torch::Tensor x = mp_resample(input, filter_, resample_);
  if (!decoder_) {
    if (conv_skip_) x = conv_skip_->forward(x);
    x = mp_normalize(x, {1});  // pixel norm
  }
  torch::Tensor y = conv_res0_->forward(mp_silu(x));
  torch::Tensor c = emb_linear_->forward(emb, emb_gain_) + 1;
  y = mp_silu(y * c.unsqueeze(2).unsqueeze(3).to(y.dtype()));
  if (is_training() && dropout_ > 0) y = onestep::dropout(y, dropout_, true);
  y = conv_res1_->forward(y);
  if (decoder_ && conv_skip_) x = conv_skip_->forward(x);
  x = mp_sum(x, y, res_balance_);
  if (num_heads_) x = mp_sum(x, attention(x), attn_balance_);
  return clip_act_ > 0 ? x.clamp(-clip_act_, clip_act_) : x;
}

// Self-attention over pixels as plain matmul + softmax (forward-mode AD works through it): q, k, v pixel-normalised
// per head, logits q.k / sqrt(channels per head).
torch::Tensor Edm2BlockImpl::attention(const torch::Tensor& x) {
  torch::Tensor y = attn_qkv_->forward(x);
  y = y.reshape({y.size(0), num_heads_, -1, 3, y.size(2) * y.size(3)});
  auto qkv = mp_normalize(y, {2}).unbind(3);  // each [N, heads, c, HW]
  const double scale = 1 / std::sqrt(static_cast<double>(qkv[0].size(2)));
  torch::Tensor w = torch::matmul(qkv[0].transpose(2, 3), qkv[1] * scale).softmax(3);  // [N, heads, q, k]
  y = torch::matmul(qkv[2], w.transpose(2, 3));                                       // [N, heads, c, q]
  return attn_proj_->forward(y.reshape(x.sizes()));
}

int64_t Edm2BlockImpl::macs(int64_t& res) const {
  const auto taps = static_cast<int64_t>(filter_.size() * filter_.size());
  int64_t total = 0;
  if (resample_ == Resample::Down) {
    res /= 2;
    total += res * res * in_channels_ * taps;
  } else if (resample_ == Resample::Up) {
    total += res * res * in_channels_ * taps;
    res *= 2;
  }
  total += conv_res0_->macs(res) + emb_linear_->macs(res) + conv_res1_->macs(res);
  if (conv_skip_) total += conv_skip_->macs(res);
  if (num_heads_) total += attn_qkv_->macs(res) + attn_proj_->macs(res) + 2 * res * res * res * res * out_channels_;
  return total;
}

Edm2UNetImpl::Edm2UNetImpl(const Edm2UNetConfig& config) : config_(config) {
  const auto& c = config_;
  const int64_t cnoise = c.model_channels * c.channel_mult_noise, cemb = c.model_channels * c.channel_mult_emb;
  charge_parameter_values({1});
  out_gain_ = register_parameter("out_gain", torch::zeros({}, mp_init_options()));
  emb_fourier_ = register_module("emb_fourier", MPFourier(cnoise));
  emb_noise_ = register_module("emb_noise", MPConv(cnoise, cemb, 0));
  if (c.label_dim) emb_label_ = register_module("emb_label", MPConv(c.label_dim, cemb, 0));
  auto block = [&](int64_t cin, int64_t cout, bool decoder, Resample resample, bool attention, int64_t res) {
    const double dropout = c.dropout_res > 0 && res > c.dropout_res ? 0.0 : c.dropout;  // ECT's dropout_res
    return Edm2Block(Edm2BlockOptions{cin, cout, cemb, decoder, resample, attention, &config_, dropout});
  };
  auto has_attention = [&](int64_t res) {
    return std::count(c.attn_resolutions.begin(), c.attn_resolutions.end(), res) > 0;
  };
  enc_ = register_module("enc", torch::nn::ModuleDict());
  dec_ = register_module("dec", torch::nn::ModuleDict());
  auto add = [](torch::nn::ModuleDict& dict, std::vector<Step>& steps, Step step) {
    std::shared_ptr<torch::nn::Module> module =
        step.conv ? std::static_pointer_cast<torch::nn::Module>(step.conv.ptr()) : step.block.ptr();
    dict->update(std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>{{step.name, module}});
    steps.push_back(std::move(step));
  };
  std::vector<int64_t> skips;
  int64_t cout = c.img_channels + 1;  // EDM2 appends a constant channel of ones
  for (size_t level = 0; level < c.channel_mult.size(); ++level) {
    const int64_t res = c.img_resolution >> level, channels = c.model_channels * c.channel_mult[level];
    const std::string prefix = level_name(res) + "_";
    if (level == 0) {
      add(enc_, enc_steps_, {prefix + "conv", MPConv(cout, channels, 3), nullptr});
      cout = channels;
    } else {
      add(enc_, enc_steps_, {prefix + "down", nullptr, block(cout, cout, false, Resample::Down, false, res)});
    }
    skips.push_back(cout);
    for (int64_t idx = 0; idx < c.num_blocks; ++idx) {
      const std::string name = prefix + "block" + std::to_string(idx);
      add(enc_, enc_steps_, {name, nullptr, block(cout, channels, false, Resample::Keep, has_attention(res), res)});
      cout = channels;
      skips.push_back(cout);
    }
  }
  const auto levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t res = c.img_resolution >> level, channels = c.model_channels * c.channel_mult[level];
    const std::string prefix = level_name(res) + "_";
    if (level == levels - 1) {
      add(dec_, dec_steps_, {prefix + "in0", nullptr, block(cout, cout, true, Resample::Keep, true, res)});
      add(dec_, dec_steps_, {prefix + "in1", nullptr, block(cout, cout, true, Resample::Keep, false, res)});
    } else {
      add(dec_, dec_steps_, {prefix + "up", nullptr, block(cout, cout, true, Resample::Up, false, res)});
    }
    for (int64_t idx = 0; idx <= c.num_blocks; ++idx) {
      const int64_t cin = cout + skips.back();
      skips.pop_back();
      const std::string name = prefix + "block" + std::to_string(idx);
      add(dec_, dec_steps_, {name, nullptr, block(cin, channels, true, Resample::Keep, has_attention(res), res)});
      cout = channels;
    }
  }
  out_conv_ = register_module("out_conv", MPConv(cout, c.img_channels, 3));
}

torch::Tensor Edm2UNetImpl::forward(const torch::Tensor& input, const torch::Tensor& noise_labels,
                                    const torch::Tensor& class_labels, const torch::Tensor& augment_labels) {
  const auto& c = config_;
  require(input.dim() == 4 && input.size(1) == c.img_channels && input.size(2) == c.img_resolution &&
              input.size(3) == c.img_resolution,
          "EDM2 U-Net expects input [B, ", c.img_channels, ", ", c.img_resolution, ", ", c.img_resolution, "], got ",
          input.sizes());
  require(!augment_labels.defined(), "the EDM2 U-Net takes no augmentation labels (model.augment_dim is not a key of "
                                     "arch = \"edm2\")");
  torch::Tensor emb = emb_noise_->forward(emb_fourier_->forward(noise_labels));
  if (emb_label_) {
    require(class_labels.defined() && class_labels.dim() == 2 && class_labels.size(1) == c.label_dim,
            "EDM2 U-Net with label_dim ", c.label_dim, " needs class labels [B, ", c.label_dim, "]");
    const torch::Tensor labels = class_labels * std::sqrt(static_cast<double>(c.label_dim));
    emb = mp_sum(emb, emb_label_->forward(labels.to(emb.dtype())), c.label_balance);
  }
  emb = mp_silu(emb);

  torch::Tensor x = torch::cat({input, torch::ones_like(input.slice(1, 0, 1))}, 1);
  std::vector<torch::Tensor> skips;
  for (auto& step : enc_steps_) {
    x = step.conv ? step.conv->forward(x) : step.block->forward(x, emb);
    skips.push_back(x);
  }
  for (auto& step : dec_steps_) {
    if (step.name.find("block") != std::string::npos) {
      x = mp_cat(x, skips.back(), c.concat_balance);
      skips.pop_back();
    }
    x = step.block->forward(x, emb);
  }
  return out_conv_->forward(x, out_gain_);
}

int64_t Edm2UNetImpl::forward_macs() const {
  int64_t total = emb_noise_->macs(1) + (emb_label_ ? emb_label_->macs(1) : 0);
  int64_t res = config_.img_resolution;
  for (const auto& step : enc_steps_) total += step.conv ? step.conv->macs(res) : step.block->macs(res);
  for (const auto& step : dec_steps_) total += step.block->macs(res);
  return total + out_conv_->macs(res);
}

}  // namespace onestep
