#include "precond/model.h"

#include "core/error.h"
#include "io/checkpoint_layout.h"
#include "io/run_dir.h"
#include "io/safetensors.h"
#include "networks/layers.h"

#include <algorithm>
#include <set>

namespace onestep {

DenoiserImpl::DenoiserImpl(PrecondConfig precond, std::shared_ptr<NetworkImpl> network, Json model_config)
    : precond_(std::move(precond)), network_(std::move(network)), model_config_(std::move(model_config)) {
  TORCH_INTERNAL_ASSERT(network_);
  register_module("model", network_);
  const int64_t time_inputs = model_config_.value("time_inputs", int64_t{1});
  const bool meanflow = precond_.parameterization == Parameterization::MeanFlow;
  require(time_inputs == (meanflow ? 2 : 1), "config: precond.parameterization = \"",
          parameterization_name(precond_.parameterization), "\" needs model.time_inputs = ", meanflow ? 2 : 1,
          ", got ", time_inputs);
  if (is_trigflow(precond_.parameterization)) logvar_ = register_module("logvar", LogVarHead());
}

torch::Tensor DenoiserImpl::network_labels(const torch::Tensor& class_labels, int64_t batch,
                                           const torch::Device& device) const {
  if (label_dim() <= 0) return {};
  return class_labels.defined() ? class_labels.to(device, torch::kFloat32).reshape({batch, -1})
                                : torch::zeros({batch, label_dim()}, torch::TensorOptions().device(device));
}

LogVarHead& DenoiserImpl::logvar_head() {
  require(!logvar_.is_empty(), "this model has no log-variance head (precond.parameterization = \"",
          parameterization_name(precond_.parameterization), "\"; only \"trigflow\" has one)");
  return logvar_;
}

int64_t DenoiserImpl::label_dim() const { return model_config_.value("label_dim", int64_t{0}); }

std::vector<int64_t> DenoiserImpl::sample_shape() const {
  if (model_config_.value("arch", std::string("songunet")) == "mlp") return {model_config_.at("in_dim").get<int64_t>()};
  const int64_t res = model_config_.at("img_resolution").get<int64_t>();
  return {model_config_.at("img_channels").get<int64_t>(), res, res};
}

torch::Tensor DenoiserImpl::forward(const torch::Tensor& x, const torch::Tensor& sigma, Scalings scalings,
                                    const torch::Tensor& class_labels, const torch::Tensor& augment_labels) {
  require(precond_.parameterization == Parameterization::Edm, "this is a ",
          parameterization_name(precond_.parameterization),
          " model (precond.parameterization): it has no EDM denoiser D(x, sigma); sample it with the consistency "
          "sampler (sample.kind = \"consistency\")");
  return denoise(x, sigma, scalings, class_labels, augment_labels);
}

torch::Tensor DenoiserImpl::denoise(const torch::Tensor& x, const torch::Tensor& sigma, Scalings scalings,
                                    const torch::Tensor& class_labels, const torch::Tensor& augment_labels) {
  require(precond_.parameterization == Parameterization::Edm ||
              precond_.parameterization == Parameterization::TrigFlowEdm,
          "a ", parameterization_name(precond_.parameterization), " model has no EDM denoiser");
  require(x.dim() >= 1, "model input must have a batch dimension");
  const int64_t batch = x.size(0);
  require(sigma.defined() && (sigma.numel() == 1 || sigma.numel() == batch), "sigma must be a scalar or [", batch,
          "], got ", sigma.defined() ? sigma.sizes() : at::IntArrayRef{});
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = batch;
  torch::Tensor s = sigma.to(x.device(), torch::kFloat32).reshape({-1}).expand({batch}).reshape(shape);
  const ScalingCoefficients k = scaling_coefficients(s, precond_, scalings);

  const torch::Tensor labels = network_labels(class_labels, batch, x.device());
  torch::Tensor f = network_->forward(k.c_in * x, k.c_noise.reshape({-1}), labels, augment_labels);
  return k.c_skip * x + k.c_out * f.to(torch::kFloat32);
}

Json DenoiserImpl::description() const {
  Json j{{"model", model_config_}, {"precond", precond_.to_json()}};
  if (!trained_with_.empty()) j["method"] = trained_with_;
  if (!point_scaling_.is_identity()) j["point_scaling"] = point_scaling_.to_json();
  return j;
}

Denoiser build_model(const Json& root) {
  Json effective;
  auto network = build_network(root, &effective);
  return Denoiser(PrecondConfig::from_config(root), network, effective);
}

std::vector<std::pair<std::string, torch::Tensor>> model_state(Denoiser& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model->named_parameters()) out.emplace_back(item.key(), item.value().detach());
  for (const auto& item : model->named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

void save_model(const std::filesystem::path& path, Denoiser& model,
                const std::map<std::string, std::string>& extra_metadata) {
  const std::vector<std::pair<std::string, torch::Tensor>> tensors = model_state(model);
  std::map<std::string, std::string> metadata = extra_metadata;
  metadata[checkpoint_layout::kFormatKey] = checkpoint_layout::kFormatValue;
  metadata[checkpoint_layout::kModelKey] = model->description().dump();
  save_safetensors(path, tensors, metadata);
}

namespace {

namespace layout = checkpoint_layout;

// The "onestep" metadata: the model configuration ({"model", "precond"}) and whatever else it records.
Json model_description(const SafetensorsContent& content, const std::string& where) {
  auto meta = content.metadata.find(layout::kModelKey);
  require(meta != content.metadata.end(), where,
          ": no 'onestep' metadata (model configuration); convert foreign checkpoints with tools/convert_edm.py");
  Json root;
  try {
    root = Json::parse(meta->second);
  } catch (const Json::exception& e) {
    fail(where, ": 'onestep' metadata is not valid JSON (", e.what(), ")");
  }
  require(root.is_object() && root.contains("model") && root["model"].is_object(), where,
          ": 'onestep' metadata lacks the \"model\" configuration");
  if (!root.contains("precond")) root["precond"] = Json::object();
  return root;
}

// The tensor name prefix of the weight set `weights` names ("" = raw; "ema.<name>." = an EMA of a training
// checkpoint, checkpoint_layout.h). `trained_with` is filled from the training state when the description
// lacks it.
std::string weight_set_prefix(const SafetensorsContent& content, const std::string& weights, const std::string& where,
                              std::string& trained_with) {
  auto train_meta = content.metadata.find(layout::kTrainStateKey);
  if (train_meta == content.metadata.end()) {  // a model file holds one weight set
    if (weights.empty()) return "";
    if (weights == layout::kRawWeights) {
      // `onestep train` records which weight set a model file holds (its first EMA, or the raw weights of a run
      // without EMA). Raw weights asked of a file that holds an EMA, or does not say, are refused, not replaced.
      const auto held = content.metadata.find(layout::kModelWeightsKey);
      require(held != content.metadata.end() && held->second == layout::kRawWeights, where,
              ": --weights raw, but this model file ",
              held == content.metadata.end() ? std::string("does not record which weights it holds")
                                             : "holds the EMA " + held->second + " weights only",
              "; drop --weights to use them, or take the raw weights from the run's checkpoint "
              "(--ckpt RUN/checkpoints/latest --weights raw)");
      return "";
    }
    const bool any = std::any_of(content.tensors.begin(), content.tensors.end(),
                                 [&](const auto& item) { return item.first.rfind(weights, 0) == 0; });
    require(any, where, ": no tensor starts with '", weights, "' (a model file, not a training checkpoint: drop "
                        "--weights)");
    return weights;
  }
  const Json state = Json::parse(train_meta->second, nullptr, false);
  if (trained_with.empty() && state.is_object() && state.contains(layout::kStateObjective) &&
      state[layout::kStateObjective].is_string())
    trained_with = state[layout::kStateObjective].get<std::string>();
  const std::vector<std::string> emas = layout::ema_names(state);
  // What sample and eval use by default: the first EMA, the raw weights when the run kept none.
  std::string name = weights.empty() ? (emas.empty() ? layout::kRawWeights : emas.front()) : weights;
  if (name == layout::kRawWeights) return "";
  if (name.rfind(layout::kEmaPrefix, 0) == 0 && name.back() == '.') name = name.substr(4, name.size() - 5);
  std::string available = layout::kRawWeights;
  for (const auto& ema : emas) available += ", " + ema;
  require(std::find(emas.begin(), emas.end(), name) != emas.end(), where, ": no weight set '", weights,
          "' (this training checkpoint holds: ", available, ")");
  return layout::ema_prefix(name);
}

// The network the description declares, checked against the stored tensors before it is built; the build may not
// allocate more values than the file stores: a crafted "num_layers = 1000000000" costs nothing.
Denoiser build_stored_model(const Json& config, const SafetensorsContent& content, const std::string& prefix,
                            const std::string& where) {
  StoredShapes stored;
  int64_t stored_values = 0;
  const std::string network_prefix = prefix + "model.";
  for (const auto& [name, tensor] : content.tensors) {
    stored_values += tensor.numel();
    if (name.rfind(network_prefix, 0) == 0) stored[name.substr(network_prefix.size())] = tensor.sizes().vec();
  }
  try {
    check_network_against_stored(config, stored);
    // Slack for a file that lacks a tensor or two, so that the name-by-name check below names it.
    ParameterBudget budget(2 * stored_values + (int64_t{1} << 20),
                           "the 'onestep' metadata declares a far larger network than the file stores");
    return build_model(config);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
}

// Copies the weight set `prefix` into `model`, strictly: every parameter and buffer present with its shape, and
// no tensor of the set left over.
void assign_weight_set(Denoiser& model, const SafetensorsContent& content, const std::string& prefix,
                       const std::string& where) {
  torch::NoGradGuard no_grad;
  std::set<std::string> expected;
  auto assign = [&](const std::string& name, torch::Tensor& target) {
    expected.insert(prefix + name);
    const torch::Tensor* source = content.find(prefix + name);
    require(source != nullptr, where, ": missing tensor '", prefix + name, "'");
    require(source->sizes() == target.sizes(), where, ": tensor '", prefix + name, "' has shape ", source->sizes(),
            ", the model expects ", target.sizes());
    require(source->is_floating_point(), where, ": tensor '", prefix + name, "' is not floating point");
    target.copy_(*source);
  };
  for (auto& item : model->named_parameters()) assign(item.key(), item.value());
  for (auto& item : model->named_buffers()) assign(item.key(), item.value());
  const bool training_checkpoint = content.metadata.count(layout::kTrainStateKey) > 0;
  for (const auto& item : content.tensors) {
    const std::string& name = item.first;
    const bool in_set = training_checkpoint ? layout::in_weight_set(name, prefix) : name.rfind(prefix, 0) == 0;
    if (in_set) require(expected.count(name), where, ": unexpected tensor '", name, "' (not part of the model)");
  }
}

}  // namespace

Denoiser load_model(const std::filesystem::path& requested_path, const std::string& weights) {
  require(!std::filesystem::is_directory(requested_path), "'", requested_path.string(),
          "' is a directory, not a model file (a run directory? give DIR/model.safetensors or DIR/checkpoints/latest)");
  const std::filesystem::path path = resolve_checkpoint_argument(requested_path);
  const SafetensorsContent content = load_safetensors(path);
  const std::string where = "checkpoint '" + path.string() + "'";
  const Json root = model_description(content, where);
  std::string trained_with;  // the objective, when the file records it
  if (root.contains("method") && root["method"].is_string()) trained_with = root["method"].get<std::string>();
  const std::string prefix = weight_set_prefix(content, weights, where, trained_with);

  Denoiser model = build_stored_model(Json{{"model", root["model"]}, {"precond", root["precond"]}}, content, prefix,
                                      where);
  model->set_trained_with(trained_with);
  if (root.contains("point_scaling"))
    model->set_point_scaling(PointScaling::from_json(root["point_scaling"], where));
  assign_weight_set(model, content, prefix, where);
  return model;
}

namespace {

std::string shape_text(const torch::Tensor& t) {
  std::string out = "[";
  for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
  return out + "]";
}

// "'a', 'b', 'c' and 4 more"
std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min<size_t>(names.size(), 4);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > shown) out += " and " + std::to_string(names.size() - shown) + " more";
  return out;
}

std::map<std::string, torch::Tensor> named_state(Denoiser& model) {
  std::map<std::string, torch::Tensor> out;
  for (auto& item : model->named_parameters()) out.emplace(item.key(), item.value());
  for (auto& item : model->named_buffers()) out.emplace(item.key(), item.value());
  return out;
}

}  // namespace

std::vector<std::string> copy_init_weights(Denoiser& target, Denoiser& source, const std::string& where) {
  const auto to = named_state(target);
  const auto from = named_state(source);
  const bool target_has_augment = target->model_config().value("augment_dim", int64_t{0}) > 0;
  std::vector<std::string> dropped, unexpected, missing, mismatched;
  for (const auto& [name, tensor] : from) {
    if (to.count(name)) continue;
    if (!target_has_augment && name.rfind("model.map_augment.", 0) == 0)
      dropped.push_back(name + " " + shape_text(tensor));
    else
      unexpected.push_back(name);
  }
  for (const auto& [name, tensor] : to) {
    auto it = from.find(name);
    // A TrigFlow student initialised from an EDM teacher (sCD) keeps its fresh log-variance head: the teacher has
    // none (sCM section 4.2 initialises the student from the teacher's network).
    if (it == from.end() && name.rfind("logvar.", 0) == 0) continue;
    if (it == from.end())
      missing.push_back(name);
    else if (it->second.sizes() != tensor.sizes())
      mismatched.push_back(name + " " + shape_text(it->second) + " vs " + shape_text(tensor));
  }
  std::string problems;
  if (!missing.empty()) problems += "; the checkpoint lacks " + name_list(missing);
  if (!unexpected.empty()) problems += "; the configured model has no " + name_list(unexpected);
  if (!mismatched.empty()) problems += "; shapes differ (checkpoint vs configured): " + name_list(mismatched);
  require(problems.empty(), "--init ", where, ": does not match the configured model (architectures differ",
          problems, ")");
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : to) {
    if (!from.count(name)) continue;  // a log-variance head, above
    torch::Tensor destination = tensor;
    destination.copy_(from.at(name));
  }
  return dropped;
}

int64_t forward_macs(Denoiser& model) { return model->network().forward_macs(); }

}  // namespace onestep
