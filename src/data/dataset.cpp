// load_dataset: picks the reader for data.dataset, then applies resolution, labels and subset options.
#include "data/dataset.h"

#include "core/error.h"
#include "data/formats.h"

#include <iomanip>
#include <sstream>

namespace onestep {
namespace {

const char* kFashionMnistDefault = "/usr/share/datasets/fashion-mnist";

std::filesystem::path required_path(const DataConfig& c) {
  require(!c.path.empty(), "data.dataset=", c.dataset, " needs data.path (", 
          c.dataset == "cifar10" ? "directory with data_batch_*.bin / test_batch.bin or one .bin file"
          : c.dataset == "folder" ? "directory of PNG/JPEG images"
          : c.dataset == "zip"    ? "zip of PNG images with dataset.json"
          : c.dataset == "points" ? ".npy float32 [N, 2] or CSV file"
          : c.dataset == "idx"    ? "an IDX images file"
          : c.dataset == "imagenet-npz" ? "directory with train_data_batch_*.npz / val_data.npz or one .npz file"
                                  : "directory with {train,t10k}-*-ubyte[.gz]",
          ")");
  require(std::filesystem::exists(c.path), "data.path ", c.path, " does not exist");
  return c.path;
}

Dataset read_source(const DataConfig& c) {
  if (c.dataset == "fashion-mnist") {
    const std::filesystem::path dir = c.path.empty() ? kFashionMnistDefault : c.path;
    require(std::filesystem::exists(dir), "Fashion-MNIST not found at ", dir.string(),
            " (install Debian's dataset-fashion-mnist or set data.path)");
    return load_idx_directory(dir, c.split, "fashion-mnist");
  }
  if (c.dataset == "mnist") return load_idx_directory(required_path(c), c.split, "mnist");
  if (c.dataset == "idx") return load_idx_file(required_path(c));
  if (c.dataset == "cifar10") return load_cifar10(required_path(c), c.split);
  if (c.dataset == "folder") return load_image_folder(required_path(c), c.resize == "resize" ? c.resolution : 0);
  if (c.dataset == "imagenet-npz") return load_imagenet_npz(required_path(c), c.split);
  if (c.dataset == "zip") return load_image_zip(required_path(c), c.resize == "resize" ? c.resolution : 0);
  Dataset d;
  if (c.dataset == "points") {
    d.samples = read_points_file(required_path(c));
  } else if (c.is_toy_distribution()) {
    d.samples = make_toy_points(c.dataset, c.num_points, static_cast<uint64_t>(c.seed));
  } else {
    fail("unknown data.dataset '", c.dataset, "'");
  }
  d.name = c.dataset;
  return d;
}

}  // namespace

Dataset read_dataset(const DataConfig& c) {
  Dataset d = read_source(c);
  require(d.size() > 0, "dataset ", c.dataset, " ", c.path, " is empty");
  if (d.is_image()) {
    if (c.resolution > 0 && (d.samples.size(2) != c.resolution || d.samples.size(3) != c.resolution)) {
      d.samples = c.resize == "pad" ? pad_images(d.samples, c.resolution) : resize_images(d.samples, c.resolution);
    }
  } else {
    require(c.resolution == 0, "data.resolution applies to images, not to the point set ", c.dataset);
    require(!c.flip, "data.flip applies to images, not to the point set ", c.dataset);
  }
  if (c.subset > 0 && c.subset < d.size()) {
    torch::Tensor keep = subset_indices(d.size(), c.subset, static_cast<uint64_t>(c.seed));
    d.samples = d.samples.index_select(0, keep);
    if (d.labels.defined()) d.labels = d.labels.index_select(0, keep);
  } else if (c.subset > d.size()) {
    fail("data.subset=", c.subset, " exceeds the dataset size ", d.size());
  }
  d.samples = d.samples.contiguous();
  return d;
}

Dataset load_dataset(const DataConfig& c) {
  Dataset d = read_dataset(c);
  select_labels(d, c);
  return d;
}

void select_labels(Dataset& d, const DataConfig& c) {
  if (c.labels) {
    require(d.labels.defined(), "data.labels=true but dataset ", c.dataset, " ", c.path, " has no labels");
    if (!c.class_names.empty() && !d.class_names.empty()) {
      auto joined = [](const std::vector<std::string>& names) {
        std::string out;
        for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
        return out;
      };
      require(c.class_names == d.class_names, "data.class_names [", joined(c.class_names), "] differ from the classes "
              "of ", c.path, " [", joined(d.class_names), "]: label indices would change meaning");
    }
  } else {
    // Unconditional: no labels travel with the batches.
    d.labels = torch::Tensor();
    d.num_classes = 0;
    d.class_names.clear();
  }
}

torch::Tensor images_to_float(const torch::Tensor& images) {
  require(images.scalar_type() == torch::kUInt8, "images_to_float: expected uint8, got ", images.scalar_type());
  return images.to(torch::kFloat32) / 127.5f - 1.0f;
}

torch::Tensor float_to_images(const torch::Tensor& x) {
  require(x.is_floating_point(), "float_to_images: expected a floating tensor, got ", x.scalar_type());
  // +128 (not +127.5) then truncation, as the FID pipelines quantize (edm/generate.py; docs/methods.md section 10).
  return (x.to(torch::kFloat32) * 127.5f + 128.0f).clamp(0, 255).to(torch::kUInt8);
}

std::string describe_dataset(const Dataset& d) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(4);
  out << d.name << ": " << d.size() << (d.is_image() ? " images" : " points") << " of shape [";
  for (int64_t i = 1; i < d.samples.dim(); ++i) out << (i > 1 ? ", " : "") << d.samples.size(i);
  out << "]";
  if (d.is_image()) {
    // Per-channel moments of the [-1, 1] floats, exact from a 256-bin histogram of the uint8 values
    // (no float copy of the whole dataset).
    out << "\n  per-channel mean/std in [-1, 1]:";
    const torch::Tensor values = torch::arange(256, torch::kFloat64) / 127.5 - 1.0;
    for (int64_t c = 0; c < d.samples.size(1); ++c) {
      torch::Tensor counts = torch::bincount(d.samples.select(1, c).flatten().to(torch::kInt64), {}, 256)
                                 .to(torch::kFloat64);
      const double n = counts.sum().item<double>();
      const double mean = (counts * values).sum().item<double>() / n;
      const double var = (counts * (values - mean).square()).sum().item<double>() / std::max(1.0, n - 1);
      out << " c" << c << " " << mean << "/" << std::sqrt(var);
    }
  } else {
    torch::Tensor s = d.samples.to(torch::kFloat64);
    out << "\n  per-dimension mean/std:";
    for (int64_t c = 0; c < s.size(1); ++c) {
      out << " d" << c << " " << s.select(1, c).mean().item<double>() << "/" << s.select(1, c).std().item<double>();
    }
  }
  if (d.labels.defined()) {
    torch::Tensor hist = torch::bincount(d.labels, {}, d.num_classes);
    out << "\n  labels (" << d.num_classes << " classes):";
    for (int64_t k = 0; k < hist.size(0); ++k) out << " " << k << ":" << hist[k].item<int64_t>();
  } else {
    out << "\n  no labels";
  }
  return out.str();
}

}  // namespace onestep
