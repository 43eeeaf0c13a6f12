#include "metrics/inception.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "metrics/module_weights.h"

#include <torch/script.h>


namespace onestep {

namespace nnf = torch::nn::functional;

InceptionConvImpl::InceptionConvImpl(int64_t in, int64_t out, std::vector<int64_t> kernel,
                                     std::vector<int64_t> stride, std::vector<int64_t> padding) {
  conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel)
                                                       .stride(stride)
                                                       .padding(padding)
                                                       .bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(0.001)));
}

torch::Tensor InceptionConvImpl::forward(const torch::Tensor& x) { return torch::relu(bn(conv(x))); }

namespace {

class MixedBlock : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;

 protected:
  InceptionConv conv(const std::string& name, int64_t in, int64_t out, std::vector<int64_t> kernel,
                     std::vector<int64_t> stride = {1, 1}, std::vector<int64_t> padding = {0, 0}) {
    return register_module(name, InceptionConv(in, out, std::move(kernel), std::move(stride), std::move(padding)));
  }
};

// TensorFlow's average pool divides by the number of real (unpadded) pixels: count_include_pad = false.
torch::Tensor tf_avg_pool(const torch::Tensor& x) {
  return nnf::avg_pool2d(x, nnf::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
}

// Mixed_5b..5d (35x35).
class BlockA : public MixedBlock {
 public:
  BlockA(int64_t in, int64_t pool_features) {
    b1 = conv("branch1x1", in, 64, {1, 1});
    b5_1 = conv("branch5x5_1", in, 48, {1, 1});
    b5_2 = conv("branch5x5_2", 48, 64, {5, 5}, {1, 1}, {2, 2});
    b3_1 = conv("branch3x3dbl_1", in, 64, {1, 1});
    b3_2 = conv("branch3x3dbl_2", 64, 96, {3, 3}, {1, 1}, {1, 1});
    b3_3 = conv("branch3x3dbl_3", 96, 96, {3, 3}, {1, 1}, {1, 1});
    pool = conv("branch_pool", in, pool_features, {1, 1});
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::cat({b1(x), b5_2(b5_1(x)), b3_3(b3_2(b3_1(x))), pool(tf_avg_pool(x))}, 1);
  }

 private:
  InceptionConv b1{nullptr}, b5_1{nullptr}, b5_2{nullptr}, b3_1{nullptr}, b3_2{nullptr}, b3_3{nullptr},
      pool{nullptr};
};

// Mixed_6a: 35x35 -> 17x17.
class BlockB : public MixedBlock {
 public:
  explicit BlockB(int64_t in) {
    b3 = conv("branch3x3", in, 384, {3, 3}, {2, 2});
    d1 = conv("branch3x3dbl_1", in, 64, {1, 1});
    d2 = conv("branch3x3dbl_2", 64, 96, {3, 3}, {1, 1}, {1, 1});
    d3 = conv("branch3x3dbl_3", 96, 96, {3, 3}, {2, 2});
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::cat({b3(x), d3(d2(d1(x))), torch::max_pool2d(x, {3, 3}, {2, 2})}, 1);
  }

 private:
  InceptionConv b3{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr};
};

// Mixed_6b..6e (17x17), factorized 7x7 convolutions.
class BlockC : public MixedBlock {
 public:
  BlockC(int64_t in, int64_t c7) {
    b1 = conv("branch1x1", in, 192, {1, 1});
    s1 = conv("branch7x7_1", in, c7, {1, 1});
    s2 = conv("branch7x7_2", c7, c7, {1, 7}, {1, 1}, {0, 3});
    s3 = conv("branch7x7_3", c7, 192, {7, 1}, {1, 1}, {3, 0});
    d1 = conv("branch7x7dbl_1", in, c7, {1, 1});
    d2 = conv("branch7x7dbl_2", c7, c7, {7, 1}, {1, 1}, {3, 0});
    d3 = conv("branch7x7dbl_3", c7, c7, {1, 7}, {1, 1}, {0, 3});
    d4 = conv("branch7x7dbl_4", c7, c7, {7, 1}, {1, 1}, {3, 0});
    d5 = conv("branch7x7dbl_5", c7, 192, {1, 7}, {1, 1}, {0, 3});
    pool = conv("branch_pool", in, 192, {1, 1});
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::cat({b1(x), s3(s2(s1(x))), d5(d4(d3(d2(d1(x))))), pool(tf_avg_pool(x))}, 1);
  }

 private:
  InceptionConv b1{nullptr}, s1{nullptr}, s2{nullptr}, s3{nullptr}, d1{nullptr}, d2{nullptr}, d3{nullptr},
      d4{nullptr}, d5{nullptr}, pool{nullptr};
};

// Mixed_7a: 17x17 -> 8x8.
class BlockD : public MixedBlock {
 public:
  explicit BlockD(int64_t in) {
    a1 = conv("branch3x3_1", in, 192, {1, 1});
    a2 = conv("branch3x3_2", 192, 320, {3, 3}, {2, 2});
    s1 = conv("branch7x7x3_1", in, 192, {1, 1});
    s2 = conv("branch7x7x3_2", 192, 192, {1, 7}, {1, 1}, {0, 3});
    s3 = conv("branch7x7x3_3", 192, 192, {7, 1}, {1, 1}, {3, 0});
    s4 = conv("branch7x7x3_4", 192, 192, {3, 3}, {2, 2});
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::cat({a2(a1(x)), s4(s3(s2(s1(x)))), torch::max_pool2d(x, {3, 3}, {2, 2})}, 1);
  }

 private:
  InceptionConv a1{nullptr}, a2{nullptr}, s1{nullptr}, s2{nullptr}, s3{nullptr}, s4{nullptr};
};

// Mixed_7b, Mixed_7c (8x8). The FID graph's last block pools with a max pool where the paper has an average
// (pytorch-fid's FIDInceptionE_2); the one before averages without the padding.
class BlockE : public MixedBlock {
 public:
  BlockE(int64_t in, bool max_pool_branch) : max_pool_branch_(max_pool_branch) {
    b1 = conv("branch1x1", in, 320, {1, 1});
    t1 = conv("branch3x3_1", in, 384, {1, 1});
    t2a = conv("branch3x3_2a", 384, 384, {1, 3}, {1, 1}, {0, 1});
    t2b = conv("branch3x3_2b", 384, 384, {3, 1}, {1, 1}, {1, 0});
    d1 = conv("branch3x3dbl_1", in, 448, {1, 1});
    d2 = conv("branch3x3dbl_2", 448, 384, {3, 3}, {1, 1}, {1, 1});
    d3a = conv("branch3x3dbl_3a", 384, 384, {1, 3}, {1, 1}, {0, 1});
    d3b = conv("branch3x3dbl_3b", 384, 384, {3, 1}, {1, 1}, {1, 0});
    pool = conv("branch_pool", in, 192, {1, 1});
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    const auto t = t1(x);
    const auto d = d2(d1(x));
    const auto pooled = max_pool_branch_ ? torch::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}) : tf_avg_pool(x);
    return torch::cat({b1(x), t2a(t), t2b(t), d3a(d), d3b(d), pool(pooled)}, 1);
  }

 private:
  bool max_pool_branch_;
  InceptionConv b1{nullptr}, t1{nullptr}, t2a{nullptr}, t2b{nullptr}, d1{nullptr}, d2{nullptr}, d3a{nullptr},
      d3b{nullptr}, pool{nullptr};
};

}  // namespace

InceptionV3Impl::InceptionV3Impl() {
  const auto stem = [this](const std::string& name, int64_t in, int64_t out, int64_t k, int64_t stride,
                           int64_t pad) {
    stem_.push_back(register_module(name, InceptionConv(in, out, std::vector<int64_t>{k, k}, std::vector<int64_t>{stride, stride},
                                                            std::vector<int64_t>{pad, pad})));
  };
  stem("Conv2d_1a_3x3", 3, 32, 3, 2, 0);
  stem("Conv2d_2a_3x3", 32, 32, 3, 1, 0);
  stem("Conv2d_2b_3x3", 32, 64, 3, 1, 1);
  stem("Conv2d_3b_1x1", 64, 80, 1, 1, 0);
  stem("Conv2d_4a_3x3", 80, 192, 3, 1, 0);
  const auto mixed = [this](const std::string& name, std::shared_ptr<MixedBlock> block) {
    mixed_.push_back(register_module(name, std::move(block)));
  };
  mixed("Mixed_5b", std::make_shared<BlockA>(192, 32));
  mixed("Mixed_5c", std::make_shared<BlockA>(256, 64));
  mixed("Mixed_5d", std::make_shared<BlockA>(288, 64));
  mixed("Mixed_6a", std::make_shared<BlockB>(288));
  mixed("Mixed_6b", std::make_shared<BlockC>(768, 128));
  mixed("Mixed_6c", std::make_shared<BlockC>(768, 160));
  mixed("Mixed_6d", std::make_shared<BlockC>(768, 160));
  mixed("Mixed_6e", std::make_shared<BlockC>(768, 192));
  mixed("Mixed_7a", std::make_shared<BlockD>(768));
  mixed("Mixed_7b", std::make_shared<BlockE>(1280, false));
  mixed("Mixed_7c", std::make_shared<BlockE>(2048, true));
}

torch::Tensor InceptionV3Impl::forward(const torch::Tensor& input) {
  const auto conv = [this](size_t i, const torch::Tensor& x) {
    return std::static_pointer_cast<InceptionConvImpl>(stem_[i])->forward(x);
  };
  auto x = conv(2, conv(1, conv(0, input)));
  x = torch::max_pool2d(x, {3, 3}, {2, 2});
  x = conv(4, conv(3, x));
  x = torch::max_pool2d(x, {3, 3}, {2, 2});
  for (const auto& block : mixed_) x = std::static_pointer_cast<MixedBlock>(block)->forward(x);
  return x.mean({2, 3});  // pool3: global average over the 8x8 map
}

torch::Tensor inception_preprocess(const torch::Tensor& images) {
  require(images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
          "Inception: expected images [N, 1|3, H, W], got ", images.sizes());
  auto x = images.to(torch::kFloat32);
  if (x.size(1) == 1) x = x.repeat({1, 3, 1, 1});
  if (x.size(2) != 299 || x.size(3) != 299)
    x = nnf::interpolate(x, nnf::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{299, 299})
                                .mode(torch::kBilinear)
                                .align_corners(false));
  return (x - 128.0) / 128.0;  // the 2015 TensorFlow graph's input scaling
}

void load_inception_weights(InceptionV3& model, const std::filesystem::path& path) {
  require(std::filesystem::exists(path), "Inception weights not found: ", path.string(),
          " (see docs/evaluation.md: convert pytorch-fid's weights with tools/convert_inception.py)");
  // fc.* is the 1008-way classifier on top of pool3, which FID does not use.
  copy_named_tensors(*model, load_safetensors(path), "Inception weights " + path.string(),
                     [](const std::string& name) { return name.starts_with("fc."); });
}

namespace {

class InceptionDetector : public FeatureDetector {
 public:
  InceptionDetector(InceptionV3 model, const torch::Device& device) : model_(std::move(model)), device_(device) {
    model_->to(device_);
    model_->eval();
  }
  torch::Tensor features(const torch::Tensor& images) override {
    torch::NoGradGuard no_grad;
    return model_->forward(inception_preprocess(images.to(device_)));
  }
  int64_t dim() const override { return 2048; }
  std::string name() const override { return "inception-v3 (pytorch-fid weights)"; }
  torch::Device device() const override { return device_; }

 private:
  InceptionV3 model_;
  torch::Device device_;
};

class TorchScriptDetector : public FeatureDetector {
 public:
  TorchScriptDetector(torch::jit::Module module, const torch::Device& device)
      : module_(std::move(module)), device_(device) {
    module_.to(device_);
    module_.eval();
  }
  torch::Tensor features(const torch::Tensor& images) override {
    require(images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3),
            "detector: expected images [N, 1|3, H, W], got ", images.sizes());
    torch::NoGradGuard no_grad;
    auto x = images.to(device_, torch::kUInt8);
    if (x.size(1) == 1) x = x.repeat({1, 3, 1, 1});  // as EDM's fid.py does for grayscale data
    auto out = module_.get_method("forward")({x}, {{"return_features", true}});
    require(out.isTensor(), "TorchScript detector did not return a tensor");
    auto feats = out.toTensor();
    require(feats.dim() == 2 && feats.size(0) == images.size(0), "TorchScript detector returned shape ",
            feats.sizes(), ", expected [", images.size(0), ", D]");
    if (dim_ == 0) dim_ = feats.size(1);
    return feats.to(torch::kFloat32);
  }
  int64_t dim() const override { return dim_ == 0 ? 2048 : dim_; }
  std::string name() const override { return "TorchScript detector"; }
  torch::Device device() const override { return device_; }

 private:
  torch::jit::Module module_;
  torch::Device device_;
  int64_t dim_ = 0;
};

}  // namespace

std::unique_ptr<FeatureDetector> make_inception_detector(InceptionV3 model, const torch::Device& device) {
  return std::make_unique<InceptionDetector>(std::move(model), device);
}

std::unique_ptr<FeatureDetector> load_inception_detector(const std::filesystem::path& path,
                                                         const torch::Device& device) {
  InceptionV3 model;
  load_inception_weights(model, path);
  return make_inception_detector(model, device);
}

std::unique_ptr<FeatureDetector> load_torchscript_detector(const std::filesystem::path& path,
                                                           const torch::Device& device) {
  require(std::filesystem::exists(path), "detector file not found: ", path.string(),
          " (see docs/evaluation.md for where to get inception-2015-12-05.pt)");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path.string(), torch::kCPU);
  } catch (const c10::Error& e) {
    fail("cannot load TorchScript detector ", path.string(), ": not a TorchScript archive (",
         std::string(e.what_without_backtrace()).substr(0, std::string(e.what_without_backtrace()).find('\n')), ")");
  }
  return std::make_unique<TorchScriptDetector>(std::move(module), device);
}

}  // namespace onestep
