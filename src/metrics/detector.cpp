#include "metrics/detector.h"

#include "core/error.h"
#include "metrics/fmnist_classifier.h"
#include "metrics/inception.h"
#include "build_paths.h"

#include <cstdlib>

namespace onestep {

std::filesystem::path assets_dir() {
  if (const char* env = std::getenv("ONESTEP_ASSETS"); env != nullptr && *env != '\0') return env;
  return std::filesystem::path(ONESTEP_SOURCE_DIR) / "assets";
}

std::unique_ptr<FeatureDetector> load_detector(const std::string& metric, const std::filesystem::path& path,
                                               const torch::Device& device) {
  if (metric == "fd-fmnist") {
    const auto file = path.empty() ? assets_dir() / "fmnist_classifier.safetensors" : path;
    return make_fmnist_detector(load_fmnist_classifier(file), device);
  }
  if (metric == "fid") {
    require(!path.empty(),
            "FID needs the Inception weights: pass --detector FILE (or set [eval].detector) with "
            "inception-2015-12-05.pt or a .safetensors from tools/convert_inception.py (see docs/evaluation.md)");
    require(std::filesystem::exists(path), "detector file not found: ", path.string(),
            " (see docs/evaluation.md for where to get inception-2015-12-05.pt)");
    if (path.extension() == ".safetensors") return load_inception_detector(path, device);
    return load_torchscript_detector(path, device);
  }
  fail("unknown metric '", metric, "' (choices: fid, fd-fmnist)");
}

torch::Tensor extract_features(FeatureDetector& detector, const torch::Tensor& images, int64_t batch) {
  require(batch >= 1, "feature extraction: batch must be positive");
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < images.size(0); start += batch)
    parts.push_back(detector.features(images.slice(0, start, std::min(start + batch, images.size(0)))).cpu());
  require(!parts.empty(), "feature extraction: no images");
  return torch::cat(parts);
}

}  // namespace onestep
