#pragma once
// The Fashion-MNIST feature network behind "FD-FMNIST": a small CNN classifier onestep trains itself
// (`onestep eval train-classifier`), whose 128-d penultimate layer plays the role Inception's pool3 plays in FID.
#include "metrics/detector.h"

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

namespace onestep {

// 28x28 gray -> [conv3x3 -> BN -> ReLU -> maxpool2] x3 (32, 64, 128 channels; 28 -> 14 -> 7 -> 3)
// -> fc 1152 -> 128 (the features) -> ReLU -> dropout -> fc 10.
class FmnistClassifierImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kFeatureDim = 128;
  FmnistClassifierImpl();
  // x: float [N, 1, 28, 28] in [-1, 1]. features() is the pre-activation of the penultimate layer.
  torch::Tensor features(const torch::Tensor& x);
  torch::Tensor forward(const torch::Tensor& x);  // logits [N, 10]

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(FmnistClassifier);

// uint8 [0, 255] or float [-1, 1] images [N, 1|3, H, W] -> float [N, 1, 28, 28] in [-1, 1]: RGB averaged to gray,
// 32x32 (Fashion-MNIST zero-padded by 2 as the data loader pads it) center-cropped, other sizes resized bilinearly.
torch::Tensor fmnist_classifier_input(const torch::Tensor& images);

void save_fmnist_classifier(const std::filesystem::path& path, FmnistClassifier& model, double test_accuracy);
FmnistClassifier load_fmnist_classifier(const std::filesystem::path& path);
std::unique_ptr<FeatureDetector> make_fmnist_detector(FmnistClassifier model, const torch::Device& device);

struct ClassifierTraining {
  int64_t epochs = 6;
  int64_t batch = 128;
  double lr = 2e-3;     // peak Adam learning rate; cosine decay after a short warm-up
  uint64_t seed = 0;
  std::string data_path;  // empty = Debian's /usr/share/datasets/fashion-mnist
};
struct ClassifierResult {
  FmnistClassifier model{nullptr};
  double test_accuracy = 0.0;
  double seconds = 0.0;
};
// `progress(epoch, test_accuracy)` is called after each epoch.
ClassifierResult train_fmnist_classifier(const ClassifierTraining& options,
                                         const std::function<void(int64_t, double)>& progress = {});
// Accuracy on labelled images (uint8 [N, 1, 28, 28] or as fmnist_classifier_input accepts).
double classifier_accuracy(FmnistClassifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                           int64_t batch = 1000);

}  // namespace onestep
