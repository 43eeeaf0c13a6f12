#include "metrics/fmnist_classifier.h"

#include "core/error.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "metrics/module_weights.h"

#include <chrono>
#include <cmath>
#include <numbers>

namespace onestep {

namespace nnf = torch::nn::functional;

FmnistClassifierImpl::FmnistClassifierImpl() {
  const auto conv = [](int64_t in, int64_t out) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false));
  };
  conv1 = register_module("conv1", conv(1, 32));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(32));
  conv2 = register_module("conv2", conv(32, 64));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(64));
  conv3 = register_module("conv3", conv(64, 128));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(128));
  fc1 = register_module("fc1", torch::nn::Linear(128 * 3 * 3, kFeatureDim));
  fc2 = register_module("fc2", torch::nn::Linear(kFeatureDim, 10));
}

torch::Tensor FmnistClassifierImpl::features(const torch::Tensor& x) {
  auto h = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
  h = torch::max_pool2d(torch::relu(bn2(conv2(h))), 2);
  h = torch::max_pool2d(torch::relu(bn3(conv3(h))), 2);
  return fc1(h.flatten(1));
}

torch::Tensor FmnistClassifierImpl::forward(const torch::Tensor& x) {
  return fc2(nnf::dropout(torch::relu(features(x)), nnf::DropoutFuncOptions().p(0.3).training(is_training())));
}

torch::Tensor fmnist_classifier_input(const torch::Tensor& images) {
  require(images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
          "FMNIST classifier: expected images [N, 1|3, H, W], got ", images.sizes());
  auto x = images.scalar_type() == torch::kUInt8 ? images.to(torch::kFloat32) / 127.5 - 1.0
                                                 : images.to(torch::kFloat32);
  if (x.size(1) == 3) x = x.mean(1, /*keepdim=*/true);
  if (x.size(2) == 32 && x.size(3) == 32) return x.slice(2, 2, 30).slice(3, 2, 30).contiguous();
  if (x.size(2) != 28 || x.size(3) != 28)
    x = nnf::interpolate(x, nnf::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{28, 28})
                                .mode(torch::kBilinear)
                                .align_corners(false));
  return x;
}

void save_fmnist_classifier(const std::filesystem::path& path, FmnistClassifier& model, double test_accuracy) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) tensors.emplace_back(p.key(), p.value().detach());
  for (const auto& b : model->named_buffers())
    if (!b.key().ends_with("num_batches_tracked")) tensors.emplace_back(b.key(), b.value());
  save_safetensors(path, tensors,
                   {{"onestep_fmnist_classifier", Json{{"test_accuracy", test_accuracy},
                                                       {"feature_dim", FmnistClassifierImpl::kFeatureDim}}
                                                      .dump()}});
}

FmnistClassifier load_fmnist_classifier(const std::filesystem::path& path) {
  require(std::filesystem::exists(path), "FMNIST classifier weights not found: ", path.string(),
          " (train them with 'onestep eval train-classifier --out ", path.string(), "')");
  FmnistClassifier model;
  copy_named_tensors(*model, load_safetensors(path), "FMNIST classifier " + path.string());
  model->eval();
  return model;
}

namespace {

class FmnistDetector : public FeatureDetector {
 public:
  FmnistDetector(FmnistClassifier model, const torch::Device& device) : model_(std::move(model)), device_(device) {
    model_->to(device_);
    model_->eval();
  }
  torch::Tensor features(const torch::Tensor& images) override {
    torch::NoGradGuard no_grad;
    return model_->features(fmnist_classifier_input(images.to(device_)));
  }
  int64_t dim() const override { return FmnistClassifierImpl::kFeatureDim; }
  std::string name() const override { return "fmnist-classifier"; }
  torch::Device device() const override { return device_; }

 private:
  FmnistClassifier model_;
  torch::Device device_;
};

Dataset load_fmnist_split(const std::string& split, const std::string& path) {
  DataConfig config;
  config.dataset = "fashion-mnist";
  config.path = path;
  config.split = split;
  config.labels = true;
  auto data = load_dataset(config);
  require(data.labels.defined(), "Fashion-MNIST ", split, " split has no labels");
  return data;
}

}  // namespace

std::unique_ptr<FeatureDetector> make_fmnist_detector(FmnistClassifier model, const torch::Device& device) {
  return std::make_unique<FmnistDetector>(std::move(model), device);
}

double classifier_accuracy(FmnistClassifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                           int64_t batch) {
  torch::NoGradGuard no_grad;
  model->eval();
  int64_t correct = 0;
  for (int64_t start = 0; start < images.size(0); start += batch) {
    const auto end = std::min(start + batch, images.size(0));
    const auto logits = model->forward(fmnist_classifier_input(images.slice(0, start, end)));
    correct += (logits.argmax(1) == labels.slice(0, start, end)).sum().item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(images.size(0));
}

ClassifierResult train_fmnist_classifier(const ClassifierTraining& options,
                                         const std::function<void(int64_t, double)>& progress) {
  require(options.epochs >= 1 && options.batch >= 1 && options.lr > 0, "train-classifier: epochs, batch and lr must be positive");
  const auto start_time = std::chrono::steady_clock::now();
  const auto train = load_fmnist_split("train", options.data_path);
  const auto test = load_fmnist_split("test", options.data_path);
  torch::manual_seed(options.seed);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  FmnistClassifier model;
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(options.lr));
  const int64_t n = train.size();
  const int64_t steps_per_epoch = n / options.batch;
  const int64_t total = steps_per_epoch * options.epochs;
  const int64_t warmup = std::min<int64_t>(200, total / 10);
  const auto images = fmnist_classifier_input(train.samples);
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    model->train();
    const auto perm = torch::randperm(n, generator, torch::kInt64);
    const auto flips = torch::rand({n}, generator) < 0.5;
    for (int64_t b = 0; b < steps_per_epoch; ++b, ++step) {
      const auto idx = perm.slice(0, b * options.batch, (b + 1) * options.batch);
      auto x = images.index_select(0, idx);
      // Horizontal flips: Fashion-MNIST classes are left-right symmetric.
      x = torch::where(flips.index_select(0, idx).view({-1, 1, 1, 1}), x.flip({3}), x);
      const double lr = step < warmup ? options.lr * static_cast<double>(step + 1) / static_cast<double>(warmup)
                                      : options.lr * 0.5 *
                                            (1.0 + std::cos(std::numbers::pi * static_cast<double>(step - warmup) /
                                                            static_cast<double>(total - warmup)));
      for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
      const auto loss = torch::nn::functional::cross_entropy(model->forward(x), train.labels.index_select(0, idx));
      optimizer.zero_grad();
      loss.backward();
      optimizer.step();
    }
    const double accuracy = classifier_accuracy(model, test.samples, test.labels);
    if (progress) progress(epoch, accuracy);
  }
  ClassifierResult result;
  result.model = model;
  result.test_accuracy = classifier_accuracy(model, test.samples, test.labels);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return result;
}

}  // namespace onestep
