#pragma once
// Feature detectors: networks that map images to the feature vectors whose statistics a Frechet distance compares.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace onestep {

class FeatureDetector {
 public:
  virtual ~FeatureDetector() = default;
  // images: uint8 [N, C, H, W], C = 1 or 3, on any device; returns float32 [N, dim()] on the detector's device.
  virtual torch::Tensor features(const torch::Tensor& images) = 0;
  virtual int64_t dim() const = 0;
  virtual std::string name() const = 0;
  virtual torch::Device device() const = 0;
};

// metric "fid": Inception-v3 pool3 from `path` (.safetensors converted by tools/convert_inception.py, or the
// TorchScript inception-2015-12-05.pt); metric "fd-fmnist": the Fashion-MNIST classifier (empty path = the
// committed assets/fmnist_classifier.safetensors). Errors name the missing file and where to get it.
std::unique_ptr<FeatureDetector> load_detector(const std::string& metric, const std::filesystem::path& path,
                                               const torch::Device& device);

// assets/ of the source tree (ONESTEP_SOURCE_DIR), or $ONESTEP_ASSETS when set.
std::filesystem::path assets_dir();

// Features of a whole image set, in batches of `batch` (so memory stays bounded).
torch::Tensor extract_features(FeatureDetector& detector, const torch::Tensor& images, int64_t batch);

}  // namespace onestep
