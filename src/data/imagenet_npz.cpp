// Downsampled ImageNet (Chrabaszcz, Loshchilov & Hutter 2017, "A Downsampled Variant of ImageNet as an Alternative
// to the CIFAR datasets"): NumPy .npz batches train_data_batch_1..10.npz and val_data.npz, each with "data" uint8
// [N, 3 r r] (per image the R plane, then G, then B, each row-major r x r) and "labels" 1..1000. Read through
// onestep's .npz reader (io/npy.h).
#include "data/formats.h"

#include "core/error.h"
#include "io/npy.h"

#include <algorithm>
#include <cmath>
#include <regex>

namespace onestep {
namespace {

constexpr int64_t kImageNetClasses = 1000;

// The batch files of a directory: train_data_batch_<k>.npz in the order of k (train), or val_data.npz (test).
std::vector<std::filesystem::path> batch_files(const std::filesystem::path& dir, const std::string& split) {
  if (split != "train") {
    const auto file = dir / "val_data.npz";
    require(std::filesystem::is_regular_file(file), "downsampled-ImageNet directory ", dir.string(),
            " lacks val_data.npz (data.split = \"test\")");
    return {file};
  }
  const std::regex pattern(R"(train_data_batch_(\d+)\.npz)");
  std::vector<std::pair<int, std::filesystem::path>> found;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(name, m, pattern)) found.emplace_back(std::stoi(m[1]), entry.path());
  }
  require(!found.empty(), "downsampled-ImageNet directory ", dir.string(),
          " holds no train_data_batch_<k>.npz (Chrabaszcz et al. 2017 batches)");
  std::sort(found.begin(), found.end());
  std::vector<std::filesystem::path> files;
  for (auto& [k, path] : found) files.push_back(std::move(path));
  return files;
}

// One batch file: images uint8 [N, 3, r, r], labels int64 [N] in 0..999.
std::pair<torch::Tensor, torch::Tensor> read_batch(const std::filesystem::path& file) {
  const auto arrays = read_npz(file);
  const std::string where = "downsampled-ImageNet batch " + file.string();
  auto data = arrays.find("data");
  auto labels = arrays.find("labels");
  require(data != arrays.end() && labels != arrays.end(), where, ": needs arrays 'data' and 'labels'");
  const torch::Tensor& x = data->second;
  require(x.scalar_type() == torch::kUInt8 && x.dim() == 2, where, ": 'data' must be uint8 [N, 3 r r], got ",
          x.scalar_type(), " ", x.sizes());
  const auto r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(x.size(1)) / 3)));
  require(r >= 1 && 3 * r * r == x.size(1), where, ": 'data' rows of ", x.size(1),
          " values are not 3 square planes (12288 = 3 x 64 x 64)");
  torch::Tensor y = labels->second;
  require(!y.is_floating_point() && y.dim() == 1 && y.size(0) == x.size(0), where,
          ": 'labels' must be integers [N] with N = ", x.size(0), ", got ", y.scalar_type(), " ", y.sizes());
  y = y.to(torch::kInt64);
  if (y.numel() > 0) {
    const int64_t lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
    require(lo >= 1 && hi <= kImageNetClasses, where, ": labels must be 1..1000 (the format's 1-based classes), got ",
            lo, "..", hi);
  }
  return {x.reshape({x.size(0), 3, r, r}), y - 1};
}

}  // namespace

Dataset load_imagenet_npz(const std::filesystem::path& path, const std::string& split) {
  const auto files = std::filesystem::is_directory(path) ? batch_files(path, split)
                                                          : std::vector<std::filesystem::path>{path};
  std::vector<torch::Tensor> images, labels;
  for (const auto& file : files) {
    auto [x, y] = read_batch(file);
    if (!images.empty()) {  // (require() evaluates its message: images.front() only when there is one)
      const torch::Tensor& first = images.front();
      require(x.sizes().slice(1) == first.sizes().slice(1), "downsampled-ImageNet batch ", file.string(), " holds ",
              x.size(2), "x", x.size(3), " images, ", files.front().string(), " ", first.size(2), "x", first.size(3));
    }
    images.push_back(std::move(x));
    labels.push_back(std::move(y));
  }
  Dataset d;
  d.samples = images.size() == 1 ? images.front() : torch::cat(images);
  d.labels = labels.size() == 1 ? labels.front() : torch::cat(labels);
  d.num_classes = kImageNetClasses;
  d.name = "imagenet-npz";
  return d;
}

}  // namespace onestep
