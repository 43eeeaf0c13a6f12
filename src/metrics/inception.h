#pragma once
// Inception-v3 for FID (docs/methods.md 10): the 2015 TensorFlow graph in pytorch-fid's FID variant. Module names
// follow pytorch-fid's (torchvision's) state dict, so a safetensors converted from pt_inception-2015-12-05-6726825d.pth
// by tools/convert_inception.py loads by name. Also the TorchScript detector of StyleGAN/EDM/ECT.
#include "metrics/detector.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace onestep {

// conv (no bias) -> batch norm (eps 1e-3) -> ReLU.
class InceptionConvImpl : public torch::nn::Module {
 public:
  InceptionConvImpl(int64_t in, int64_t out, std::vector<int64_t> kernel, std::vector<int64_t> stride = {1, 1},
                    std::vector<int64_t> padding = {0, 0});
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(InceptionConv);

class InceptionV3Impl : public torch::nn::Module {
 public:
  InceptionV3Impl();
  // x: float [N, 3, 299, 299], already scaled to the network's input range; returns pool3 features [N, 2048].
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::vector<std::shared_ptr<torch::nn::Module>> stem_, mixed_;
};
TORCH_MODULE(InceptionV3);

// The 2015 graph's preprocessing: uint8 [N, C, H, W] -> 3 channels (gray repeated), bilinear resize to 299x299
// (align_corners = false), (x - 128) / 128.
torch::Tensor inception_preprocess(const torch::Tensor& images);

// Copies weights by name from a safetensors file; fc.* (the unused classifier) and num_batches_tracked are
// ignored, any other missing, extra or mis-shaped tensor is an error.
void load_inception_weights(InceptionV3& model, const std::filesystem::path& path);

std::unique_ptr<FeatureDetector> make_inception_detector(InceptionV3 model, const torch::Device& device);
std::unique_ptr<FeatureDetector> load_inception_detector(const std::filesystem::path& path,
                                                         const torch::Device& device);
// TorchScript module called as EDM calls it: detector(uint8 images [N, 3, H, W], return_features=True) -> [N, D].
std::unique_ptr<FeatureDetector> load_torchscript_detector(const std::filesystem::path& path,
                                                           const torch::Device& device);

}  // namespace onestep
