// `onestep data PATH_OR_PRESET`: what onestep sees in a dataset (format, count, shape, dtype, value range, labels
// and class names, the [model] keys it decides) and a grid of its first images, after the checks `onestep train`
// runs on it, so that bad data fails here first. docs/data.md.
#include "cli/commands.h"
#include "core/error.h"
#include "data/data_shape.h"
#include "data/dataset.h"
#include "io/image_io.h"
#include "networks/mlp.h"
#include "networks/song_unet.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

namespace onestep::cli {
namespace {

namespace fs = std::filesystem;

struct DataOptions {
  std::string target;  // a dataset path, or a preset / configuration file whose [data] is inspected
  std::vector<std::string> overrides;
  std::string grid;
  int64_t grid_count = 64;
};

bool has_file_starting(const fs::path& dir, const std::string& prefix) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().rfind(prefix, 0) == 0) return true;
  return false;
}

// data.dataset for a path, from what it holds: CIFAR-10 batches, IDX files, a zip, points, or a folder of images.
std::string detect_format(const fs::path& path) {
  if (fs::is_directory(path)) {
    if (fs::exists(path / "data_batch_1.bin") || fs::exists(path / "test_batch.bin")) return "cifar10";
    if (has_file_starting(path, "train-images-idx3-ubyte") || has_file_starting(path, "t10k-images-idx3-ubyte"))
      return path.string().find("fashion") != std::string::npos ? "fashion-mnist" : "mnist";
    return "folder";
  }
  const std::string ext = path.extension().string();
  if (ext == ".zip") return "zip";
  if (ext == ".npy" || ext == ".csv") return "points";
  if (ext == ".bin") return "cifar10";
  if (path.filename().string().find("idx3-ubyte") != std::string::npos) return "idx";
  fail("data: cannot tell the format of '", path.string(), "' (a directory of PNG/JPEG images or of CIFAR-10/IDX "
       "files, a .zip, a .npy/.csv of points, a .bin, an IDX file): give a configuration with [data] dataset, or "
       "--set data.dataset=...");
}

const char* format_text(const std::string& dataset) {
  if (dataset == "folder") return "a folder of PNG/JPEG images (class subfolders or dataset.json give labels)";
  if (dataset == "zip") return "a zip of PNG/JPEG images (EDM's dataset_tool layout, labels from dataset.json)";
  if (dataset == "cifar10") return "CIFAR-10 binary batches";
  if (dataset == "fashion-mnist" || dataset == "mnist") return "an IDX directory (MNIST layout)";
  if (dataset == "idx") return "an IDX images file";
  if (dataset == "points") return "a points file (.npy float [N, 2] or CSV)";
  return "a built-in 2-D distribution";
}

// The configuration to inspect: a dataset path becomes {data: {dataset, path}}; a preset or file is read as
// `onestep train` reads it. --set applies on top either way. `explicit_config` names the configuration file
// (empty for a path), whose [model] the data is then checked against.
Json inspected_config(const DataOptions& o, std::string& explicit_config) {
  Json root;
  const fs::path path = o.target;
  if (fs::exists(path) && path.extension() != ".toml") {
    root = Json{{"data", {{"dataset", detect_format(path)}, {"path", o.target}}}};
  } else {
    explicit_config = o.target;
    root = load_config_file(resolve_preset(o.target));
  }
  for (const auto& assignment : o.overrides) apply_override(root, assignment);
  root.erase("base");
  return root;
}

std::string value_range(const Dataset& d) {
  std::ostringstream out;
  if (d.is_image()) {
    out << "uint8, " << d.samples.min().item<int64_t>() << ".." << d.samples.max().item<int64_t>()
        << " (training sees x / 127.5 - 1, in [-1, 1])";
  } else {
    require(torch::isfinite(d.samples).all().item<bool>(), "data: the points hold NaN or Inf");
    out << "float32";
    for (int64_t c = 0; c < d.samples.size(1); ++c)
      out << ", d" << c << " " << d.samples.select(1, c).min().item<double>() << ".."
          << d.samples.select(1, c).max().item<double>();
  }
  return out.str();
}

std::string labels_text(const Dataset& d) {
  if (!d.labels.defined()) return "none";
  const int64_t classes = std::max<int64_t>(d.num_classes, static_cast<int64_t>(d.class_names.size()));
  const torch::Tensor counts = torch::bincount(d.labels, {}, classes);
  std::ostringstream out;
  out << classes << " classes:";
  for (int64_t k = 0; k < classes; ++k) {
    out << " " << k;
    if (k < static_cast<int64_t>(d.class_names.size())) out << " " << d.class_names[static_cast<size_t>(k)];
    out << " (" << counts[k].item<int64_t>() << ")";
  }
  return out.str();
}

// The moments line of describe_dataset ("per-channel mean/std in [-1, 1]: c0 ...").
std::string statistics_line(const Dataset& d) {
  const std::string text = describe_dataset(d);
  const auto begin = text.find('\n');
  if (begin == std::string::npos) return "";
  const auto end = text.find('\n', begin + 1);
  return " " + text.substr(begin + 3, end == std::string::npos ? std::string::npos : end - begin - 3);
}

void write_grid(const DataOptions& o, const Dataset& d) {
  if (o.grid.empty()) return;
  const int64_t count = std::min(o.grid_count, d.size());
  if (d.is_image()) {
    write_png_grid(o.grid, d.samples.slice(0, 0, count));
  } else {
    // Every point, in a window fitted to the data (the map training uses, to spread sigma_data = 0.5).
    write_png(o.grid, points_density_image(PointScaling::fit(d.samples, 0.5, "isotropic"), 0.5, d.samples));
  }
  std::printf("grid: %s (%s)\n", o.grid.c_str(),
              d.is_image() ? ("the first " + std::to_string(count) + " images").c_str() : "density of the points");
}

// The [model] the data gives with a configuration, checked as `onestep train` checks it (the same refusals).
void check_model(Json root, const DataShape& shape, const DataOptions& o, const std::string& config) {
  const std::string note = apply_data_shape(root, shape, ModelKeyOrigin::of_new_run(config, o.overrides));
  const std::string arch = root["model"].value("arch", std::string("songunet"));
  if (arch == "mlp")
    (void)MlpConfig::from_config(root);
  else
    (void)SongUNetConfig::from_config(root);
  std::printf("model: %s (%s)\n", model_shape_keys_text(root["model"]).c_str(),
              note.empty() ? "as configured" : note.c_str());
}

void run_data(const DataOptions& o) {
  require(o.grid_count >= 1, "data: --grid-count must be >= 1");
  std::string config;
  const Json root = inspected_config(o, config);
  const DataConfig data_config = DataConfig::from_config(root);
  // What training loads (labels only with data.labels = true) and what the data holds (every label it has).
  const Dataset all = read_dataset(data_config);
  Dataset trained = all;
  select_labels(trained, data_config);
  const DataShape shape = DataShape::of(trained, data_config);
  std::printf("data: data.dataset = %s%s\n", data_config.dataset.c_str(),
              data_config.path.empty() ? "" : (", data.path = " + data_config.path).c_str());
  std::printf("format: %s\n", format_text(data_config.dataset));
  std::printf("count: %lld %s\n", static_cast<long long>(all.size()), all.is_image() ? "images" : "points");
  std::printf("shape: %s\n", shape.image ? (std::to_string(shape.channels) + " x " + std::to_string(shape.height) +
                                            " x " + std::to_string(shape.width) + " (C x H x W)").c_str()
                                         : (std::to_string(shape.dim) + "-D points").c_str());
  std::printf("values: %s\n", value_range(all).c_str());
  std::printf("labels: %s\n", labels_text(all).c_str());
  if (all.labels.defined() && !data_config.labels)
    std::printf("training: unconditional (data.labels = false); --set data.labels=true trains a class-conditional "
                "model on these labels\n");
  std::printf("statistics:%s\n", statistics_line(all).c_str());
  const Json keys = shape.model_keys();  // refuses non-square images
  if (config.empty() && !root.contains("model")) {
    std::string text;
    for (const auto& [key, value] : keys.items())
      text += (text.empty() ? "model." : ", model.") + key + " = " + value.dump();
    std::printf("model: the data decides %s\n", text.c_str());
  } else {
    check_model(root, shape, o, config);
  }
  write_grid(o, all);
  std::printf("ok: the checks of 'onestep train' pass\n");
}

}  // namespace

void register_data_command(CLI::App& app) {
  auto options = std::make_shared<DataOptions>();
  auto* command = app.add_subcommand("data", "inspect a dataset: format, count, shape, value range, labels; the "
                                             "checks training runs");
  command->add_option("target", options->target,
                      "a dataset (folder of images, .zip, CIFAR-10 or IDX directory, .npy/.csv points) or a preset / "
                      "configuration file whose [data] is inspected")
      ->required();
  command->add_option("--set,-s", options->overrides, "override a key, e.g. --set data.resolution=32 (repeatable)");
  command->add_option("--grid", options->grid, "write the first images as a PNG grid (points: a density image)");
  command->add_option("--grid-count", options->grid_count, "images in the grid (default 64)");
  command->footer(
      "Examples:\n"
      "  onestep data images/ --grid first.png\n"
      "  onestep data fmnist-ect-cpu --set data.dataset=folder --set data.path=images --set data.labels=true\n"
      "  onestep data cifar10-ect --set data.path=/data/cifar-10-batches-bin\n"
      "  onestep data points.csv\n"
      "With a preset or configuration, the [model] keys the data decides (img_channels, img_resolution, label_dim;\n"
      "in_dim for points) are checked as 'onestep train' checks them (docs/data.md).");
  command->callback([options] { run_data(*options); });
}

}  // namespace onestep::cli
