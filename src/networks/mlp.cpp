#include "networks/mlp.h"

#include "core/error.h"

#include <cmath>
#include <set>
#include <sstream>

namespace onestep {

MlpConfig MlpConfig::from_config(const Json& root) {
  SectionReader r(root, "model");
  r.get_string("arch", "mlp", {"mlp"});
  MlpConfig c;
  c.in_dim = r.get_int("in_dim", c.in_dim);
  c.hidden = r.get_int("hidden", c.hidden);
  c.num_layers = r.get_int("num_layers", c.num_layers);
  c.noise_channels = r.get_int("noise_channels", c.noise_channels);
  c.label_dim = r.get_int("label_dim", c.label_dim);
  c.dropout = r.get_float("dropout", c.dropout);
  c.max_positions = r.get_float("max_positions", c.max_positions);
  c.input_init = r.get_string("input_init", c.input_init, {"xavier_uniform", "kaiming_uniform"});
  c.input_frequencies = r.get_int("input_frequencies", c.input_frequencies);
  c.time_inputs = r.get_int("time_inputs", c.time_inputs);
  r.finish();
  require(c.in_dim >= 1 && c.hidden >= 1 && c.num_layers >= 1,
          "config: model.in_dim, model.hidden and model.num_layers must be >= 1");
  require(c.noise_channels >= 4 && c.noise_channels % 2 == 0, "config: model.noise_channels must be even and >= 4");
  require(c.label_dim >= 0, "config: model.label_dim must be >= 0");
  require(c.dropout >= 0 && c.dropout < 1, "config: model.dropout must be in [0, 1), got ", c.dropout);
  require(c.max_positions > 0, "config: model.max_positions must be > 0");
  require(c.input_frequencies >= 0 && c.input_frequencies <= 16,
          "config: model.input_frequencies must be in [0, 16], got ", c.input_frequencies);
  require(c.time_inputs == 1 || c.time_inputs == 2, "config: model.time_inputs must be 1 or 2, got ", c.time_inputs);
  return c;
}

Json MlpConfig::to_json() const {
  Json j{{"arch", "mlp"},         {"in_dim", in_dim},       {"hidden", hidden},
         {"num_layers", num_layers}, {"noise_channels", noise_channels}, {"label_dim", label_dim},
         {"dropout", dropout},    {"max_positions", max_positions}, {"input_init", input_init},
         {"input_frequencies", input_frequencies}};
  if (time_inputs != 1) j["time_inputs"] = time_inputs;  // absent from files written before the key existed
  return j;
}

std::string MlpConfig::describe() const {
  std::ostringstream out;
  out << "MLP: " << in_dim;
  if (input_frequencies) out << " (+ sin/cos at " << input_frequencies << " frequencies: " << input_features() << ")";
  out << " -> " << num_layers << " x " << hidden << " (SiLU) -> " << in_dim
      << ", positional noise embedding " << noise_channels << ", dropout " << dropout;
  if (label_dim) out << ", label_dim " << label_dim;
  if (time_inputs != 1) out << ", " << time_inputs << " time inputs";
  out << "\n";
  return out.str();
}

void MlpConfig::check_against(const StoredShapes& stored) const {
  const std::set<int64_t> layer_indices = stored_name_numbers(stored, "layers.", '.');  // "layers.<i>.weight"
  require(static_cast<int64_t>(layer_indices.size()) == num_layers, "model.num_layers = ", num_layers,
          ", but the file stores ", layer_indices.size(), " hidden layers (layers.<i>.weight)");
  if (const auto* s = stored_shape(stored, "input.weight"); s && s->size() == 2) {
    require((*s)[0] == hidden, "model.hidden = ", hidden, ", but the stored input.weight has shape ", shape_text(*s));
    require((*s)[1] == input_features(), "model.in_dim = ", in_dim, " with model.input_frequencies = ",
            input_frequencies, " (", input_features(), " input features), but the stored input.weight has shape ",
            shape_text(*s));
  }
  if (const auto* s = stored_shape(stored, "map_layer0.weight"); s && s->size() == 2)
    require((*s)[1] == noise_channels * time_inputs, "model.noise_channels = ", noise_channels,
            " with model.time_inputs = ", time_inputs, ", but the stored map_layer0.weight has shape ", shape_text(*s));
  const auto* label = stored_shape(stored, "map_label.weight");
  require(label != nullptr || label_dim == 0, "model.label_dim = ", label_dim,
          ", but the file stores no map_label.weight (an unconditional model)");
  if (label && label->size() == 2)
    require((*label)[1] == label_dim, "model.label_dim = ", label_dim, ", but the stored map_label.weight has shape ",
            shape_text(*label));
}

torch::Tensor encode_input(const torch::Tensor& x, int64_t frequencies) {
  if (frequencies == 0) return x;
  std::vector<torch::Tensor> parts{x};
  for (int64_t k = 0; k < frequencies; ++k) {
    const torch::Tensor angle = x * std::ldexp(1.0, static_cast<int>(k));
    parts.push_back(angle.sin());
    parts.push_back(angle.cos());
  }
  return torch::cat(parts, 1);
}

MlpImpl::MlpImpl(const MlpConfig& config) : config_(config) {
  const InitSpec init{"xavier_uniform", 1.0, 0.0};
  map_noise = register_module("map_noise", PositionalEmbedding(config.noise_channels, config.max_positions, true));
  if (config.label_dim)
    map_label = register_module("map_label",
                                Linear(config.label_dim, config.noise_channels * config.time_inputs, true, init));
  map_layer0 =
      register_module("map_layer0", Linear(config.noise_channels * config.time_inputs, config.hidden, true, init));
  map_layer1 = register_module("map_layer1", Linear(config.hidden, config.hidden, true, init));
  input = register_module("input", Linear(config.input_features(), config.hidden, true,
                                          InitSpec{config.input_init, 1.0, 0.0}));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) layers->push_back(Linear(config.hidden, config.hidden, true, init));
  // Small output init, like SongUNet's output convolution: the model starts close to D(x) = c_skip x.
  output = register_module("output", Linear(config.hidden, config.in_dim, true, InitSpec{"xavier_uniform", 1e-5, 0.0}));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x, const torch::Tensor& noise_labels,
                               const torch::Tensor& class_labels, const torch::Tensor&) {
  require(x.dim() == 2 && x.size(1) == config_.in_dim, "MLP expects input [B, ", config_.in_dim, "], got ", x.sizes());
  torch::Tensor emb =
      embed_time_inputs([this](const torch::Tensor& l) { return map_noise->forward(l); }, noise_labels,
                        config_.time_inputs);
  if (map_label) {
    require(class_labels.defined() && class_labels.dim() == 2 && class_labels.size(1) == config_.label_dim,
            "MLP with label_dim ", config_.label_dim, " needs class labels [B, ", config_.label_dim, "]");
    emb = emb + map_label->forward(class_labels * std::sqrt(static_cast<double>(config_.label_dim)));
  }
  emb = map_layer1->forward(torch::silu(map_layer0->forward(emb)));
  torch::Tensor h = input->forward(encode_input(x, config_.input_frequencies));
  for (const auto& layer : *layers) {
    h = torch::silu(layer->as<LinearImpl>()->forward(h + emb));
    h = onestep::dropout(h, config_.dropout, is_training());
  }
  return output->forward(h);
}

int64_t MlpImpl::forward_macs() const {
  int64_t total = map_layer0->macs() + map_layer1->macs() + input->macs() + output->macs();
  if (map_label) total += map_label->macs();
  for (const auto& layer : *layers) total += layer->as<LinearImpl>()->macs();
  return total;
}

}  // namespace onestep
