#include "networks/song_unet.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>
#include <tuple>

namespace onestep {

SongUNetConfig SongUNetConfig::from_config(const Json& root) {
  SectionReader r(root, "model");
  r.get_string("arch", "songunet", {"songunet"});
  SongUNetConfig c;
  c.variant = r.get_string("variant", c.variant, {"ddpmpp", "ncsnpp"});
  if (c.variant == "ncsnpp") {  // EDM train.py --arch=ncsnpp
    c.embedding_type = "fourier";
    c.encoder_type = "residual";
    c.decoder_type = "standard";
    c.channel_mult_noise = 2;
    c.resample_filter = {1, 3, 3, 1};
  }
  c.img_resolution = r.get_int("img_resolution", c.img_resolution);
  c.img_channels = r.get_int("img_channels", c.img_channels);
  c.label_dim = r.get_int("label_dim", c.label_dim);
  c.augment_dim = r.get_int("augment_dim", c.augment_dim);
  c.model_channels = r.get_int("model_channels", c.model_channels);
  c.channel_mult = r.get_ints("channel_mult", c.channel_mult);
  c.channel_mult_emb = r.get_int("channel_mult_emb", c.channel_mult_emb);
  c.num_blocks = r.get_int("num_blocks", c.num_blocks);
  c.attn_resolutions = r.get_ints("attn_resolutions", c.attn_resolutions);
  c.dropout = r.get_float("dropout", c.dropout);
  c.label_dropout = r.get_float("label_dropout", c.label_dropout);
  c.embedding_type = r.get_string("embedding_type", c.embedding_type, {"positional", "fourier"});
  c.channel_mult_noise = r.get_int("channel_mult_noise", c.channel_mult_noise);
  c.encoder_type = r.get_string("encoder_type", c.encoder_type, {"standard", "skip", "residual"});
  c.decoder_type = r.get_string("decoder_type", c.decoder_type, {"standard", "skip"});
  c.resample_filter = r.get_floats("resample_filter", c.resample_filter);
  c.fourier_scale = r.get_float("fourier_scale", c.fourier_scale);
  c.max_positions = r.get_float("max_positions", c.max_positions);
  c.time_inputs = r.get_int("time_inputs", c.time_inputs);
  r.finish();
  require(c.time_inputs == 1 || c.time_inputs == 2, "config: model.time_inputs must be 1 or 2, got ", c.time_inputs);

  require(c.img_channels >= 1, "config: model.img_channels must be >= 1, got ", c.img_channels);
  require(c.label_dim >= 0 && c.augment_dim >= 0, "config: model.label_dim and model.augment_dim must be >= 0");
  require(c.model_channels >= 1 && c.channel_mult_emb >= 1 && c.channel_mult_noise >= 1,
          "config: model.model_channels, channel_mult_emb and channel_mult_noise must be >= 1");
  require(!c.channel_mult.empty(), "config: model.channel_mult must not be empty");
  for (int64_t m : c.channel_mult) require(m >= 1, "config: model.channel_mult entries must be >= 1");
  require(c.num_blocks >= 1, "config: model.num_blocks must be >= 1, got ", c.num_blocks);
  const int64_t levels = static_cast<int64_t>(c.channel_mult.size());
  require(c.img_resolution >= 1 && levels < 31 && c.img_resolution % (int64_t{1} << (levels - 1)) == 0,
          "config: model.img_resolution ", c.img_resolution, " must be divisible by 2^(levels-1) = ",
          int64_t{1} << std::min<int64_t>(levels - 1, 30));
  require(c.dropout >= 0 && c.dropout < 1, "config: model.dropout must be in [0, 1), got ", c.dropout);
  require(c.label_dropout >= 0 && c.label_dropout <= 1, "config: model.label_dropout must be in [0, 1]");
  require(!c.resample_filter.empty() && c.resample_filter.size() % 2 == 0,
          "config: model.resample_filter must have an even, non-zero length (e.g. [1,1] or [1,3,3,1])");
  require(c.max_positions > 0 && c.fourier_scale > 0, "config: model.max_positions and fourier_scale must be > 0");
  require(c.model_channels * c.channel_mult_noise % 2 == 0, "config: noise embedding width must be even");
  return c;
}

Json SongUNetConfig::to_json() const {
  Json j{{"arch", "songunet"},
         {"variant", variant},
         {"img_resolution", img_resolution},
         {"img_channels", img_channels},
         {"label_dim", label_dim},
         {"augment_dim", augment_dim},
         {"model_channels", model_channels},
         {"channel_mult", channel_mult},
         {"channel_mult_emb", channel_mult_emb},
         {"num_blocks", num_blocks},
         {"attn_resolutions", attn_resolutions},
         {"dropout", dropout},
         {"label_dropout", label_dropout},
         {"embedding_type", embedding_type},
         {"channel_mult_noise", channel_mult_noise},
         {"encoder_type", encoder_type},
         {"decoder_type", decoder_type},
         {"resample_filter", resample_filter},
         {"fourier_scale", fourier_scale},
         {"max_positions", max_positions}};
  if (time_inputs != 1) j["time_inputs"] = time_inputs;  // absent from files written before the key existed
  return j;
}

std::string SongUNetConfig::describe() const {
  std::ostringstream out;
  out << "SongUNet (" << variant << "): " << img_channels << "x" << img_resolution << "x" << img_resolution
      << ", embedding " << embedding_type << " " << model_channels * channel_mult_noise << " -> "
      << model_channels * channel_mult_emb << ", encoder " << encoder_type << ", decoder " << decoder_type
      << ", resample_filter [";
  for (size_t i = 0; i < resample_filter.size(); ++i) out << (i ? "," : "") << resample_filter[i];
  out << "], dropout " << dropout;
  if (label_dim) out << ", label_dim " << label_dim;
  if (augment_dim) out << ", augment_dim " << augment_dim;
  out << "\n";
  for (size_t level = 0; level < channel_mult.size(); ++level) {
    const int64_t res = img_resolution >> level;
    const bool attn = std::find(attn_resolutions.begin(), attn_resolutions.end(), res) != attn_resolutions.end();
    out << "  " << res << "x" << res << ": " << model_channels * channel_mult[level] << " channels, " << num_blocks
        << " encoder + " << num_blocks + 1 << " decoder blocks, attention " << (attn ? "yes" : "no");
    if (level + 1 == channel_mult.size()) out << "; + 2 bottleneck blocks (the first with attention)";
    out << "\n";
  }
  return out.str();
}

void SongUNetConfig::check_against(const StoredShapes& stored) const {
  // Encoder names are "enc.<R>x<R>_<module>.": the resolutions give the levels, the largest one img_resolution.
  const std::set<int64_t> resolutions = stored_name_numbers(stored, "enc.", 'x');
  if (resolutions.empty()) return;  // not a SongUNet's tensors: the name-by-name check reports what is missing
  const int64_t top = *resolutions.rbegin();
  require(top == img_resolution, "model.img_resolution = ", img_resolution, ", but the file's encoder starts at ",
          top, "x", top);
  require(resolutions.size() == channel_mult.size(), "model.channel_mult has ", channel_mult.size(),
          " levels, but the file's encoder has ", resolutions.size(), " resolutions");
  auto res_name = [](int64_t res) { return std::to_string(res) + "x" + std::to_string(res); };
  const std::string conv = "enc." + res_name(top) + "_conv.weight";
  if (const auto* s = stored_shape(stored, conv); s && s->size() == 4) {
    require((*s)[1] == img_channels, "model.img_channels = ", img_channels, ", but the stored ", conv,
            " has shape ", shape_text(*s));
    require((*s)[0] == model_channels, "model.model_channels = ", model_channels, ", but the stored ", conv,
            " has shape ", shape_text(*s));
  }
  std::set<std::string> top_blocks;  // "enc.<top>_block<i>."
  const std::string block_prefix = "enc." + res_name(top) + "_block";
  for (const auto& [name, shape] : stored)
    if (name.rfind(block_prefix, 0) == 0) top_blocks.insert(name.substr(0, name.find('.', block_prefix.size())));
  require(static_cast<int64_t>(top_blocks.size()) == num_blocks, "model.num_blocks = ", num_blocks,
          ", but the file stores ", top_blocks.size(), " encoder blocks at ", res_name(top));
  for (size_t level = 0; level < channel_mult.size(); ++level) {
    const std::string block = "enc." + res_name(img_resolution >> level) + "_block0.";
    const auto* s = stored_shape(stored, block + "conv1.weight");
    if (s == nullptr || s->empty()) continue;  // missing: the name-by-name check says so
    require((*s)[0] == model_channels * channel_mult[level], "model.channel_mult[", level, "] = ", channel_mult[level],
            " gives ", model_channels * channel_mult[level], " channels, but the stored ", block,
            "conv1.weight has shape ", shape_text(*s));
    const bool attention = std::find(attn_resolutions.begin(), attn_resolutions.end(), img_resolution >> level) !=
                           attn_resolutions.end();
    require(attention == (stored_shape(stored, block + "qkv.weight") != nullptr), "model.attn_resolutions ",
            attention ? "includes " : "excludes ", img_resolution >> level, ", but the file's ", block,
            attention ? " has no attention" : " has attention");
  }
  if (const auto* s = stored_shape(stored, "map_layer0.weight"); s && s->size() == 2) {
    require((*s)[0] == model_channels * channel_mult_emb, "model.channel_mult_emb = ", channel_mult_emb,
            ", but the stored map_layer0.weight has shape ", shape_text(*s));
    require((*s)[1] == model_channels * channel_mult_noise * time_inputs, "model.channel_mult_noise = ",
            channel_mult_noise, " with model.time_inputs = ", time_inputs,
            ", but the stored map_layer0.weight has shape ", shape_text(*s));
  }
  for (const auto& [key, value, module] : {std::tuple{"label_dim", label_dim, "map_label"},
                                           std::tuple{"augment_dim", augment_dim, "map_augment"}}) {
    const auto* s = stored_shape(stored, std::string(module) + ".weight");
    require(s != nullptr || value == 0, "model.", key, " = ", value, ", but the file stores no ", module, ".weight");
    if (s && s->size() == 2)
      require((*s)[1] == value, "model.", key, " = ", value, ", but the stored ", module, ".weight has shape ",
              shape_text(*s));
  }
}

void SongUNetImpl::add(torch::nn::ModuleDict& dict, std::vector<Step>& steps, Kind kind, const std::string& name,
                       std::shared_ptr<torch::nn::Module> module) {
  dict->update(std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>>{{name, module}});
  steps.push_back({kind, name, std::move(module)});
}

namespace {
// EDM's SongUNet initialization: xavier_uniform, with the last layer of each residual branch and the output conv
// scaled down by 1e-5 and the attention qkv by sqrt(0.2) (edm/training/networks.py, class SongUNet).
const InitSpec kSongUNetInit{"xavier_uniform", 1.0, 0.0};
const InitSpec kSongUNetInitZero{"xavier_uniform", 1e-5, 0.0};
const InitSpec kSongUNetInitAttn{"xavier_uniform", std::sqrt(0.2), 0.0};
}  // namespace

std::shared_ptr<torch::nn::Module> SongUNetImpl::make_block(int64_t cin, int64_t cout, bool up, bool down,
                                                            bool attention) const {
  UNetBlockOptions o;
  o.emb_channels = config_.model_channels * config_.channel_mult_emb;
  o.num_heads = 1;
  o.dropout = config_.dropout;
  o.skip_scale = std::sqrt(0.5);
  o.eps = 1e-6;
  o.resample_filter = config_.resample_filter;
  o.resample_proj = true;
  o.adaptive_scale = false;
  o.init = kSongUNetInit;
  o.init_zero = kSongUNetInitZero;
  o.init_attn = kSongUNetInitAttn;
  o.in_channels = cin;
  o.out_channels = cout;
  o.up = up;
  o.down = down;
  o.attention = attention;
  return UNetBlock(o).ptr();
}

std::shared_ptr<torch::nn::Module> SongUNetImpl::make_conv(int64_t cin, int64_t cout, int64_t kernel, bool up,
                                                           bool down, bool fused, bool zero_init) const {
  return Conv2d(Conv2dOptions{cin, cout, kernel, true, up, down, fused, config_.resample_filter,
                              zero_init ? kSongUNetInitZero : kSongUNetInit})
      .ptr();
}

bool SongUNetImpl::has_attention(int64_t resolution) const {
  const auto& r = config_.attn_resolutions;
  return std::find(r.begin(), r.end(), resolution) != r.end();
}

SongUNetImpl::SongUNetImpl(const SongUNetConfig& config) : config_(config) {
  build_mapping();
  build_decoder(build_encoder());
}

void SongUNetImpl::build_mapping() {
  const auto& c = config_;
  const int64_t emb_channels = c.model_channels * c.channel_mult_emb;
  const int64_t noise_channels = c.model_channels * c.channel_mult_noise;
  if (c.embedding_type == "positional")
    map_noise_positional_ = register_module("map_noise", PositionalEmbedding(noise_channels, c.max_positions, true));
  else
    map_noise_fourier_ = register_module("map_noise", FourierEmbedding(noise_channels, c.fourier_scale));
  const int64_t mapping_in = noise_channels * c.time_inputs;
  if (c.label_dim) map_label_ = register_module("map_label", Linear(c.label_dim, mapping_in, true, kSongUNetInit));
  if (c.augment_dim)
    map_augment_ = register_module("map_augment", Linear(c.augment_dim, mapping_in, false, kSongUNetInit));
  map_layer0_ = register_module("map_layer0", Linear(mapping_in, emb_channels, true, kSongUNetInit));
  map_layer1_ = register_module("map_layer1", Linear(emb_channels, emb_channels, true, kSongUNetInit));
}

// Every non-aux output of the encoder is a skip connection for the decoder.
std::vector<int64_t> SongUNetImpl::build_encoder() {
  const auto& c = config_;
  enc_ = register_module("enc", torch::nn::ModuleDict());
  std::vector<int64_t> skips;
  int64_t cout = c.img_channels, caux = c.img_channels;
  for (size_t level = 0; level < c.channel_mult.size(); ++level) {
    const int64_t res = c.img_resolution >> level;
    const std::string prefix = std::to_string(res) + "x" + std::to_string(res) + "_";
    if (level == 0) {
      const int64_t cin = cout;
      cout = c.model_channels;
      add(enc_, enc_steps_, Kind::Conv, prefix + "conv", make_conv(cin, cout, 3, false, false, false, false));
      skips.push_back(cout);
    } else {
      add(enc_, enc_steps_, Kind::Block, prefix + "down", make_block(cout, cout, false, true, false));
      skips.push_back(cout);
      if (c.encoder_type == "skip") {
        add(enc_, enc_steps_, Kind::AuxDown, prefix + "aux_down",
            Conv2d(Conv2dOptions{caux, caux, 0, true, false, true, false, c.resample_filter, kSongUNetInit}).ptr());
        add(enc_, enc_steps_, Kind::AuxSkip, prefix + "aux_skip", make_conv(caux, cout, 1, false, false, false, false));
      }
      if (c.encoder_type == "residual") {
        add(enc_, enc_steps_, Kind::AuxResidual, prefix + "aux_residual",
            make_conv(caux, cout, 3, false, true, true, false));
        caux = cout;
      }
    }
    for (int64_t idx = 0; idx < c.num_blocks; ++idx) {
      const int64_t cin = cout;
      cout = c.model_channels * c.channel_mult[level];
      add(enc_, enc_steps_, Kind::Block, prefix + "block" + std::to_string(idx),
          make_block(cin, cout, false, false, has_attention(res)));
      skips.push_back(cout);
    }
  }
  return skips;
}

void SongUNetImpl::build_decoder(std::vector<int64_t> skips) {
  const auto& c = config_;
  dec_ = register_module("dec", torch::nn::ModuleDict());
  int64_t cout = skips.back();  // the encoder's last output
  const int64_t levels = static_cast<int64_t>(c.channel_mult.size());
  for (int64_t level = levels - 1; level >= 0; --level) {
    const int64_t res = c.img_resolution >> level;
    const std::string prefix = std::to_string(res) + "x" + std::to_string(res) + "_";
    if (level == levels - 1) {
      add(dec_, dec_steps_, Kind::Block, prefix + "in0", make_block(cout, cout, false, false, true));
      add(dec_, dec_steps_, Kind::Block, prefix + "in1", make_block(cout, cout, false, false, false));
    } else {
      add(dec_, dec_steps_, Kind::Block, prefix + "up", make_block(cout, cout, true, false, false));
    }
    for (int64_t idx = 0; idx <= c.num_blocks; ++idx) {
      const int64_t cin = cout + skips.back();
      skips.pop_back();
      cout = c.model_channels * c.channel_mult[static_cast<size_t>(level)];
      add(dec_, dec_steps_, Kind::Block, prefix + "block" + std::to_string(idx),
          make_block(cin, cout, false, false, idx == c.num_blocks && has_attention(res)));
    }
    if (c.decoder_type == "skip" || level == 0) {
      if (c.decoder_type == "skip" && level < levels - 1)
        add(dec_, dec_steps_, Kind::AuxUp, prefix + "aux_up",
            Conv2d(Conv2dOptions{c.img_channels, c.img_channels, 0, true, true, false, false, c.resample_filter,
                                 kSongUNetInit})
                .ptr());
      add(dec_, dec_steps_, Kind::AuxNorm, prefix + "aux_norm", GroupNorm(cout, 1e-6).ptr());
      add(dec_, dec_steps_, Kind::AuxConv, prefix + "aux_conv",
          make_conv(cout, c.img_channels, 3, false, false, false, true));
    }
  }
}

torch::Tensor SongUNetImpl::forward(const torch::Tensor& input, const torch::Tensor& noise_labels,
                                    const torch::Tensor& class_labels, const torch::Tensor& augment_labels) {
  const auto& c = config_;
  require(input.dim() == 4 && input.size(1) == c.img_channels && input.size(2) == c.img_resolution &&
              input.size(3) == c.img_resolution,
          "SongUNet expects input [B, ", c.img_channels, ", ", c.img_resolution, ", ", c.img_resolution, "], got ",
          input.sizes());
  // Mapping: the embedding is swapped to [sin | cos] halves, as EDM does after its [cos | sin] embedding.
  torch::Tensor emb = embed_time_inputs(
      [this](const torch::Tensor& l) {
        return map_noise_positional_ ? map_noise_positional_->forward(l) : map_noise_fourier_->forward(l);
      },
      noise_labels, c.time_inputs);
  if (map_label_) {
    require(class_labels.defined() && class_labels.dim() == 2 && class_labels.size(1) == c.label_dim,
            "SongUNet with label_dim ", c.label_dim, " needs class labels [B, ", c.label_dim, "]");
    torch::Tensor labels = class_labels;
    if (is_training() && c.label_dropout > 0)
      labels = labels * (torch::rand({input.size(0), 1}, input.options()) >= c.label_dropout).to(labels.dtype());
    emb = emb + map_label_->forward(labels * std::sqrt(static_cast<double>(c.label_dim)));
  }
  if (map_augment_ && augment_labels.defined()) emb = emb + map_augment_->forward(augment_labels);
  emb = torch::silu(map_layer0_->forward(emb));
  emb = torch::silu(map_layer1_->forward(emb));

  std::vector<torch::Tensor> skips;
  torch::Tensor x = input, aux = input;
  for (const auto& step : enc_steps_) {
    switch (step.kind) {
      case Kind::AuxDown:
        aux = static_cast<Conv2dImpl&>(*step.module).forward(aux);
        break;
      case Kind::AuxSkip:
        x = skips.back() = x + static_cast<Conv2dImpl&>(*step.module).forward(aux);
        break;
      case Kind::AuxResidual:
        x = skips.back() = aux = (x + static_cast<Conv2dImpl&>(*step.module).forward(aux)) / std::sqrt(2.0);
        break;
      case Kind::Conv:
        x = static_cast<Conv2dImpl&>(*step.module).forward(x);
        skips.push_back(x);
        break;
      default:
        x = static_cast<UNetBlockImpl&>(*step.module).forward(x, emb);
        skips.push_back(x);
    }
  }

  torch::Tensor out, tmp;
  for (const auto& step : dec_steps_) {
    switch (step.kind) {
      case Kind::AuxUp:
        out = static_cast<Conv2dImpl&>(*step.module).forward(out);
        break;
      case Kind::AuxNorm:
        tmp = static_cast<GroupNormImpl&>(*step.module).forward(x);
        break;
      case Kind::AuxConv:
        tmp = static_cast<Conv2dImpl&>(*step.module).forward(torch::silu(tmp));
        out = out.defined() ? tmp + out : tmp;
        break;
      default: {
        auto& block = static_cast<UNetBlockImpl&>(*step.module);
        if (x.size(1) != block.options().in_channels) {
          x = torch::cat({x, skips.back()}, 1);
          skips.pop_back();
        }
        x = block.forward(x, emb);
      }
    }
  }
  return out;
}

int64_t SongUNetImpl::forward_macs() const {
  int64_t total = map_layer0_->macs() + map_layer1_->macs();
  if (map_label_) total += map_label_->macs();
  if (map_augment_) total += map_augment_->macs();
  int64_t res = config_.img_resolution, aux_res = config_.img_resolution;
  for (const auto& step : enc_steps_) {
    if (step.kind == Kind::Block) {
      total += static_cast<const UNetBlockImpl&>(*step.module).macs(res);
    } else if (step.kind == Kind::Conv) {
      total += static_cast<const Conv2dImpl&>(*step.module).macs(res);
    } else {
      total += static_cast<const Conv2dImpl&>(*step.module).macs(aux_res);
    }
  }
  int64_t out_res = res;
  for (const auto& step : dec_steps_) {
    if (step.kind == Kind::Block) {
      total += static_cast<const UNetBlockImpl&>(*step.module).macs(res);
    } else if (step.kind == Kind::AuxUp) {
      out_res = res / 2;
      total += static_cast<const Conv2dImpl&>(*step.module).macs(out_res);
    } else if (step.kind == Kind::AuxConv) {
      int64_t r = res;
      total += static_cast<const Conv2dImpl&>(*step.module).macs(r);
    }
  }
  return total;
}

}  // namespace onestep
