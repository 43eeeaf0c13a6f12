// The data's shape and classes, and the [model] keys they decide (data/data_shape.h).
#include "data/data_shape.h"

#include "core/error.h"

#include <filesystem>
#include <sstream>

namespace onestep {
namespace {

// The keys the data decides, in the order messages name them.
const char* const kShapeKeys[] = {"img_channels", "img_resolution", "in_dim", "label_dim"};

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool in_presets_dir(const std::filesystem::path& file) {
  std::error_code ec;
  const auto dir = std::filesystem::absolute(file, ec).parent_path();
  return !ec && std::filesystem::equivalent(dir, presets_dir(), ec) && !ec;
}

// The [model] keys of a user's configuration file and of the user's files it starts from (`base`); built-in
// presets contribute none (their values are defaults the data replaces).
void collect_user_keys(const std::filesystem::path& file, std::set<std::string>& keys, int depth) {
  if (depth > 16 || in_presets_dir(file)) return;
  const Json own = load_toml_file(file);
  if (own.contains("model") && own["model"].is_object())
    for (const auto& [key, value] : own["model"].items()) keys.insert(key);
  if (!own.contains("base")) return;
  const Json& base = own["base"];
  const Json names = base.is_array() ? base : Json::array({base});
  for (const auto& name : names)
    if (name.is_string()) collect_user_keys(resolve_preset(name.get<std::string>()), keys, depth + 1);
}

// How a user fixes a disagreement on `key` (a new run): drop the key, or change the data.
std::string new_run_fix(const std::string& key, const Json& have) {
  const std::string drop = "drop model." + key + " (the data decides)";
  if (key == "img_resolution")
    return drop + ", or set data.resolution = " + have.dump() + " (data.resize = \"resize\" scales, \"pad\" pads)";
  if (key == "label_dim") return drop + " or set model.label_dim to at least the number of classes";
  return drop;
}

// "2 classes (cats, dogs)" / "no labels".
std::string classes_text(const DataShape& shape) {
  if (shape.classes == 0) return "no labels";
  std::string out = std::to_string(shape.classes) + (shape.classes == 1 ? " class" : " classes");
  if (!shape.class_names.empty()) out += " (" + joined(shape.class_names) + ")";
  return out;
}

void check_architecture(const Json& model, const DataShape& shape) {
  const std::string arch = model.contains("arch") && model["arch"].is_string() ? model["arch"].get<std::string>()
                                                                               : std::string("songunet");
  if (shape.image)
    require(arch == "songunet", "the data (", shape.source, ") holds ", shape.describe(), ", but model.arch = \"",
            arch, "\" is the network for points: start from an image preset (e.g. --config fmnist-ict-cpu) or set "
            "model.arch = \"songunet\"");
  else
    require(arch == "mlp", "the data (", shape.source, ") holds ", shape.describe(), ", but model.arch = \"", arch,
            "\" is an image network: start from a points preset (e.g. --config points-edm) or set model.arch = "
            "\"mlp\"");
}

}  // namespace

DataShape DataShape::of(const Dataset& data, const DataConfig& config) {
  DataShape s;
  s.image = data.is_image();
  if (s.image) {
    s.channels = data.samples.size(1);
    s.height = data.samples.size(2);
    s.width = data.samples.size(3);
  } else {
    s.dim = data.samples.size(1);
  }
  if (data.labels.defined()) {
    s.classes = std::max<int64_t>(data.num_classes, static_cast<int64_t>(data.class_names.size()));
    s.class_names = data.class_names;
  }
  s.source = "data.dataset = " + config.dataset + (config.path.empty() ? "" : ", data.path = " + config.path);
  return s;
}

std::string DataShape::describe() const {
  std::ostringstream out;
  if (image)
    out << channels << " x " << height << " x " << width << " images";
  else
    out << dim << "-D points";
  out << ", " << classes_text(*this);
  return out.str();
}

Json DataShape::model_keys() const {
  if (!image) return Json{{"in_dim", dim}, {"label_dim", classes}};
  require(height == width, "the data (", source, ") holds ", height, " x ", width, " images (H x W), but the networks "
          "take square images: set data.resolution = ", std::max(height, width), " with data.resize = \"resize\"");
  return Json{{"img_channels", channels}, {"img_resolution", height}, {"label_dim", classes}};
}

ModelKeyOrigin ModelKeyOrigin::of_new_run(const std::string& config, const std::vector<std::string>& overrides) {
  ModelKeyOrigin origin;
  origin.hint = "set in your configuration or with --set";
  if (!config.empty()) collect_user_keys(resolve_preset(config), origin.user_keys, 0);
  Json assigned = Json::object();
  for (const auto& assignment : overrides) apply_override(assigned, assignment);
  if (assigned.contains("model") && assigned["model"].is_object())
    for (const auto& [key, value] : assigned["model"].items()) origin.user_keys.insert(key);
  return origin;
}

ModelKeyOrigin ModelKeyOrigin::of_resumed_run() {
  ModelKeyOrigin origin;
  origin.all_user = true;
  origin.hint = "recorded in the run's config.toml; --resume continues that network: train it on the data it "
                "recorded, or start a new run";
  return origin;
}

std::string apply_data_shape(Json& root, const DataShape& shape, const ModelKeyOrigin& origin) {
  if (!root["model"].is_object()) root["model"] = Json::object();
  Json& model = root["model"];
  check_architecture(model, shape);
  std::string replaced;
  const Json wanted = shape.model_keys();
  for (const auto& [key, value] : wanted.items()) {
    if (!model.contains(key) || model[key] == value) {
      model[key] = value;
      continue;
    }
    const Json have = model[key];
    if (!have.is_number_integer()) continue;  // the network's reader names an ill-typed value
    if (!origin.is_user(key)) {
      replaced += (replaced.empty() ? "" : ", ") + ("model." + key) + " = " + value.dump() + " (the preset had " +
                  have.dump() + ")";
      model[key] = value;
      continue;
    }
    const std::string fix = origin.all_user ? origin.hint : new_run_fix(key, have);
    const std::string said = "model." + key + " = " + have.dump() + (origin.all_user ? "" : " (" + origin.hint + ")");
    if (key == "label_dim") {
      const int64_t classes = value.get<int64_t>();
      // A larger class count than the data uses is consistent (the labels fit); unlabelled training is not.
      if (classes > 0 && have.get<int64_t>() > classes) continue;
      require(classes > 0, said, " but the training data carries no labels (", shape.source,
              ", data.labels = false): set data.labels = true for a class-conditional "
              "model, or model.label_dim = 0");
      fail(said, " but the data (", shape.source, ") has ", classes_text(shape), ": ", fix);
    }
    fail(said, " but the data (", shape.source, ") holds ", shape.describe(), ", which needs model.", key, " = ",
         value.dump(), ": ", fix);
  }
  return replaced.empty() ? "" : "the data (" + shape.describe() + ") sets " + replaced;
}

std::string model_shape_difference(const Json& first, const Json& second) {
  std::string out;
  for (const char* key : kShapeKeys) {
    if (!first.contains(key) || !second.contains(key) || first[key] == second[key]) continue;
    out += (out.empty() ? "" : ", ") + std::string(key) + " " + first[key].dump() + " vs " + second[key].dump();
  }
  return out;
}

std::string model_shape_keys_text(const Json& model) {
  std::string out;
  for (const char* key : kShapeKeys)
    if (model.contains(key)) out += (out.empty() ? "model." : ", model.") + std::string(key) + " = " + model[key].dump();
  return out;
}

}  // namespace onestep
