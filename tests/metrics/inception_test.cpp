#include "metrics/inception.h"

#include "core/error.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "build_paths.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

namespace {

namespace fs = std::filesystem;

// The deterministic weights of tests/fixtures/metrics/inception_pattern_features.npz (see its generator in
// tools/convert_inception.py --pattern-fixture): tensor j of the name-sorted state dict gets an integer hash of
// (element index, j) mapped to [-1, 1), scaled per kind of tensor. Integer arithmetic, so both sides agree exactly.
torch::Tensor pattern(const std::string& name, int64_t j, at::IntArrayRef shape) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  std::vector<float> values(static_cast<size_t>(n));
  const uint64_t mask = 0xFFFFFFFFull;
  for (int64_t i = 0; i < n; ++i) {
    uint64_t h = (static_cast<uint64_t>(i) + static_cast<uint64_t>(j) * 1000003ull) & mask;
    for (int r = 0; r < 2; ++r) h = ((h ^ (h >> 16)) * 0x45d9f3bull) & mask;
    h ^= h >> 16;
    const double s = 2.0 * (static_cast<double>(h) / 4294967296.0) - 1.0;
    double v;
    if (name.ends_with("conv.weight")) v = std::sqrt(6.0 / static_cast<double>(n / shape[0])) * s;
    else if (name.ends_with("bn.weight")) v = 1.0 + 0.1 * s;
    else if (name.ends_with("bn.bias") || name.ends_with("running_mean")) v = 0.1 * s;
    else v = 1.0 + 0.5 * (1.0 + s);  // running_var
    values[static_cast<size_t>(i)] = static_cast<float>(v);
  }
  return torch::tensor(values).reshape(shape);
}

std::vector<std::pair<std::string, torch::Tensor>> state_tensors(onestep::InceptionV3& model) {
  std::vector<std::pair<std::string, torch::Tensor>> all;
  for (auto& p : model->named_parameters()) all.emplace_back(p.key(), p.value());
  for (auto& b : model->named_buffers())
    if (!b.key().ends_with("num_batches_tracked")) all.emplace_back(b.key(), b.value());
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return all;
}

TEST(Inception, ParameterCountMatchesPytorchFid) {
  // pytorch-fid's fid_inception_v3 without its fc layer (counted once in Python): 21,785,568 parameters, and
  // 34,432 batch-norm running statistics, in 470 named tensors.
  onestep::InceptionV3 model;
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  EXPECT_EQ(params, 21785568);
  const auto tensors = state_tensors(model);
  EXPECT_EQ(tensors.size(), 470u);
  int64_t all = 0;
  for (const auto& t : tensors) all += t.second.numel();
  EXPECT_EQ(all - params, 34432);
  // Names as in the converted state dict.
  EXPECT_EQ(tensors.front().first, "Conv2d_1a_3x3.bn.bias");
  EXPECT_NE(std::find_if(tensors.begin(), tensors.end(),
                         [](const auto& t) { return t.first == "Mixed_7c.branch3x3dbl_3b.conv.weight"; }),
            tensors.end());
}

TEST(Inception, MatchesPytorchFidWithPatternWeights) {
  // Features computed by pytorch-fid's FID blocks (through torchvision's Inception3) with the same pattern
  // weights, for a 28x28 grayscale image and a 32x32 RGB one (resize, channel repeat, scaling all included).
  onestep::InceptionV3 model;
  {
    torch::NoGradGuard no_grad;
    int64_t j = 0;
    for (auto& [name, tensor] : state_tensors(model)) tensor.copy_(pattern(name, j++, tensor.sizes()));
  }
  auto detector = onestep::make_inception_detector(model, torch::kCPU);
  const auto fixture = onestep::read_npz(ONESTEP_TEST_FIXTURES "/metrics/inception_pattern_features.npz");
  for (const std::string key : {"gray", "rgb"}) {
    const auto features = detector->features(fixture.at(key));
    const auto expected = fixture.at(key + "_features");
    ASSERT_EQ(features.sizes(), (std::vector<int64_t>{1, 2048}));
    EXPECT_LT((features - expected).abs().max().item<double>(), 2e-5) << key;
  }
}

TEST(Inception, PreprocessResizesRepeatsAndScales) {
  const auto gray = torch::full({2, 1, 28, 28}, 128, torch::kUInt8);
  const auto x = onestep::inception_preprocess(gray);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{2, 3, 299, 299}));
  EXPECT_LT(x.abs().max().item<float>(), 1e-6f);  // bilinear weights sum to 1 up to rounding
  const auto white = onestep::inception_preprocess(torch::full({1, 3, 299, 299}, 255, torch::kUInt8));
  EXPECT_FLOAT_EQ(white.min().item<float>(), 127.0f / 128.0f);
  EXPECT_THROW(onestep::inception_preprocess(torch::zeros({1, 2, 8, 8}, torch::kUInt8)), onestep::Error);
}

TEST(Inception, SafetensorsWeightsLoadByName) {
  torch::manual_seed(10);
  onestep::InceptionV3 source;
  auto tensors = state_tensors(source);
  {
    torch::NoGradGuard no_grad;
    for (auto& t : tensors) t.second.uniform_(0.5, 1.5);
  }
  tensors.emplace_back("fc.weight", torch::zeros({1008, 2048}).slice(0, 0, 2));  // pytorch-fid's classifier: ignored
  const auto dir = fs::temp_directory_path() / ("onestep_inception_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  onestep::save_safetensors(dir / "inception.safetensors", tensors);
  onestep::InceptionV3 loaded;
  onestep::load_inception_weights(loaded, dir / "inception.safetensors");
  const auto got = state_tensors(loaded);
  for (size_t i = 0; i + 1 < tensors.size(); ++i) ASSERT_TRUE(torch::equal(got[i].second, tensors[i].second));

  tensors.erase(tensors.begin());  // a missing tensor
  onestep::save_safetensors(dir / "missing.safetensors", tensors);
  EXPECT_THROW(onestep::load_inception_weights(loaded, dir / "missing.safetensors"), onestep::Error);
  tensors.emplace_back("AuxLogits.fc.weight", torch::zeros({2}));  // a foreign one
  onestep::save_safetensors(dir / "extra.safetensors", tensors);
  EXPECT_THROW(onestep::load_inception_weights(loaded, dir / "extra.safetensors"), onestep::Error);
  EXPECT_THROW(onestep::load_inception_weights(loaded, dir / "absent.safetensors"), onestep::Error);
  fs::remove_all(dir);
}

TEST(Inception, TorchScriptDetectorIsCalledAsEdmCallsIt) {
  // tiny_detector.pt: a scripted module with the signature of inception-2015-12-05.pt,
  // forward(img uint8 [N, 3, H, W], return_features: bool) -> features.
  auto detector = onestep::load_torchscript_detector(ONESTEP_TEST_FIXTURES "/metrics/tiny_detector.pt", torch::kCPU);
  const auto fixture = onestep::read_npz(ONESTEP_TEST_FIXTURES "/metrics/tiny_detector_features.npz");
  const auto features = detector->features(fixture.at("images"));
  EXPECT_TRUE(torch::allclose(features, fixture.at("features"), 1e-5, 1e-6));
  EXPECT_EQ(detector->dim(), 2048);
  // Grayscale is repeated to 3 channels first.
  const auto gray = fixture.at("images").slice(1, 0, 1);
  EXPECT_TRUE(torch::allclose(detector->features(gray), detector->features(gray.repeat({1, 3, 1, 1}))));
}

TEST(Inception, TorchScriptLoaderRejectsMissingAndCorruptFiles) {
  EXPECT_THROW(onestep::load_torchscript_detector("/nonexistent/inception-2015-12-05.pt", torch::kCPU),
               onestep::Error);
  const auto path = fs::temp_directory_path() / ("onestep_bad_detector_" + std::to_string(::getpid()) + ".pt");
  { std::ofstream(path) << "not a zip"; }
  EXPECT_THROW(onestep::load_torchscript_detector(path, torch::kCPU), onestep::Error);
  fs::remove(path);
}

}  // namespace
