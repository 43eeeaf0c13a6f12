// EDM2's magnitude-preserving U-Net: the MP layers against hand-computed values, parity with EDM2's own Precond
// (fixture tests/fixtures/networks/edm2_unet_small.safetensors, made by tools/make_edm2_fixtures.py: EDM2's code,
// random weights, pickled as EDM2 saves networks and converted by tools/convert_edm2.py), forced weight
// normalisation, and the parameter counts EDM2's code gives for the ImageNet-64 sizes.
#include "io/safetensors.h"
#include "networks/edm2_unet.h"
#include "precond/model.h"
#include "trainer/trainer.h"

#include <gtest/gtest.h>

#include "build_paths.h"
#include "error_message.h"
#include "test_device.h"

#include <cmath>
#include <cstdlib>
#include <string>

namespace {

using onestep::testing::error_of;

double edm2_relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  return ((actual - expected).abs().max() / expected.abs().max()).item<double>();
}

onestep::Json edm2_root(onestep::Json model) {
  model["arch"] = "edm2";
  return onestep::Json{{"model", model}};
}

TEST(MpLayers, MatchHandComputedValues) {
  // normalize([3, 4]) = [3, 4] / (5 / sqrt(2) + 1e-4): unit root-mean-square per row.
  auto n = onestep::mp_normalize(torch::tensor({{3.0f, 4.0f}}));
  EXPECT_NEAR(n[0][0].item<double>(), 3 / (5 / std::sqrt(2.0) + 1e-4), 1e-6);
  // mp_sum(1, 1, 0.3) = 1 / sqrt(0.7^2 + 0.3^2) (Eq. 88).
  EXPECT_NEAR(onestep::mp_sum(torch::ones({1}), torch::ones({1}), 0.3).item<double>(), 1 / std::sqrt(0.58), 1e-6);
  // mp_cat of 1 and 3 channels at t = 0.5: C = sqrt(4 / 0.5), a scaled by C / 1 * 0.5, b by C / sqrt(3) * 0.5.
  auto cat = onestep::mp_cat(torch::ones({1, 1, 1, 1}), torch::ones({1, 3, 1, 1}), 0.5);
  EXPECT_NEAR(cat[0][0][0][0].item<double>(), std::sqrt(8.0) * 0.5, 1e-6);
  EXPECT_NEAR(cat[0][3][0][0].item<double>(), std::sqrt(8.0) / std::sqrt(3.0) * 0.5, 1e-6);
  EXPECT_NEAR(onestep::mp_silu(torch::ones({1})).item<double>(), 1 / (1 + std::exp(-1.0)) / 0.596, 1e-6);
  // [1,1] resampling: a 2x2 box average down, nearest neighbour up.
  auto x = torch::arange(16, torch::kFloat32).reshape({1, 1, 4, 4});
  auto down = onestep::mp_resample(x, {1, 1}, onestep::Resample::Down);
  EXPECT_TRUE(torch::allclose(down.flatten(), torch::tensor({2.5f, 4.5f, 10.5f, 12.5f})));
  EXPECT_FLOAT_EQ(onestep::mp_resample(down, {1, 1}, onestep::Resample::Up)[0][0][1][0].item<float>(), 2.5f);
}

// An MPConv's effective weight has norm gain per output channel whatever the stored scale (Eq. 47).
TEST(MpLayers, ConvWeightIsNormalisedAtUse) {
  onestep::MPConv linear(4, 2, 0);
  linear->eval();
  torch::NoGradGuard no_grad;
  linear->weight.mul_(7.0);
  auto y = linear->forward(torch::eye(4), torch::tensor(3.0f));  // rows of y = columns of W_eff
  auto norms = torch::linalg_vector_norm(y, 2, std::vector<int64_t>{0}, false, torch::kFloat32);
  EXPECT_TRUE(torch::allclose(norms, torch::full({2}, 3.0f), 1e-4, 0)) << norms;
}

TEST(Edm2UNet, MatchesEdm2WithinFloat32Rounding) {
  const std::string path = std::string(ONESTEP_TEST_FIXTURES) + "/networks/edm2_unet_small.safetensors";
  auto content = onestep::load_safetensors(path);
  const torch::Device device = onestep::testing::test_device();
  const double bound = onestep::testing::device_tolerance(1e-5, 1e-4);
  onestep::set_cuda_tf32(false);
  auto model = onestep::load_model(path, "net.");
  EXPECT_EQ(model->model_config().at("arch"), "edm2");
  model->to(device);
  model->eval();
  torch::NoGradGuard no_grad;
  auto in = [&](const std::string& name) { return content.find("inputs." + name)->to(device); };
  auto& net = model->network();
  const double raw_error =
      edm2_relative_error(net.forward(in("x_in"), in("noise_labels"), in("class_labels")).cpu(),
                         *content.find("expected.raw"));
  EXPECT_LE(raw_error, bound);
  const double denoised_error =
      edm2_relative_error(model->forward(in("x"), in("sigma"), onestep::Scalings::Edm, in("class_labels")).cpu(),
                         *content.find("expected.denoised"));
  EXPECT_LE(denoised_error, bound);
  // The fixture is sensitive: changing one class label moves the output past the bound.
  auto other = in("class_labels").roll(1, 1);
  EXPECT_GT(edm2_relative_error(net.forward(in("x_in"), in("noise_labels"), other).cpu(), *content.find("expected.raw")),
            1e-3);
  std::printf("[parity] edm2_unet_small on %s: max relative error F %.3g, D %.3g\n", device.str().c_str(), raw_error,
              denoised_error);
}

// A training-mode pass with gradients replaces the stored weight by its normalised version, as EDM2's does; a pass
// without gradients (ECT's teacher) leaves it unchanged.
TEST(Edm2UNet, ForcedWeightNormalisationMatchesEdm2) {
  const std::string path = std::string(ONESTEP_TEST_FIXTURES) + "/networks/edm2_unet_small.safetensors";
  auto content = onestep::load_safetensors(path);
  auto model = onestep::load_model(path, "net.");
  model->train();
  auto weight = model->named_parameters()["model.enc.16x16_block0.conv_res0.weight"];
  const torch::Tensor stored = weight.detach().clone();
  auto run = [&] {
    model->network().forward(*content.find("inputs.x_in"), *content.find("inputs.noise_labels"),
                             *content.find("inputs.class_labels"));
  };
  {
    torch::NoGradGuard no_grad;
    run();
  }
  EXPECT_TRUE(torch::equal(weight.detach(), stored));
  run();
  const torch::Tensor& expected = *content.find("expected.forced_weight");
  EXPECT_LE((weight.detach() - expected).abs().max().item<double>(), 1e-6);
  EXPECT_GT((stored - expected).abs().max().item<double>(), 1e-2);  // the fixture's weights were not normalised
}

// EDM2's own count (tools/make_edm2_fixtures.py --count, EDM2 Precond without its logvar head, label_dim 1000):
// the paper's Table 2 rounds these to 125M / 280M / 498M / 777M / 1119M.
TEST(Edm2UNet, ParameterCountsEqualEdm2s) {
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"xs", 124710821}, {"s", 280209253}, {"m", 497803045}, {"l", 777492197}, {"xl", 1119276709}};
  for (const auto& [size, count] : expected) {
    onestep::MetaInit meta;
    auto net = onestep::build_network(edm2_root({{"size", size}}));
    int64_t total = 0;
    for (const auto& p : net->parameters()) total += p.numel();
    EXPECT_EQ(total, count) << size;
    EXPECT_TRUE(net->parameters().front().is_meta());
  }
}

TEST(Edm2UNet, RefusesBadConfigurationsNamingTheKey) {
  EXPECT_NE(error_of([] { onestep::build_network(edm2_root({{"size", "xxl"}})); }).find("model.size"),
            std::string::npos);
  EXPECT_NE(error_of([] { onestep::build_network(edm2_root({{"model_channels", 8}})); }).find("channels_per_head"),
            std::string::npos);
  EXPECT_NE(error_of([] { onestep::build_network(edm2_root({{"augment_dim", 9}})); }).find("augment_dim"),
            std::string::npos);
  EXPECT_NE(error_of([] { onestep::build_network(edm2_root({{"img_resolution", 60}})); }).find("img_resolution"),
            std::string::npos);
}

// ECT's dropout_res: dropout only in blocks at resolutions <= dropout_res, so a training pass at 16x16 and above
// differs between two draws only when dropout reaches those blocks.
TEST(Edm2UNet, DropoutResLimitsDropoutToLowResolutions) {
  onestep::Json model{{"img_resolution", 16}, {"label_dim", 0}, {"model_channels", 8}, {"channel_mult", {1, 2}},
                      {"num_blocks", 1}, {"attn_resolutions", onestep::Json::array()}, {"channels_per_head", 8},
                      {"dropout", 0.5}, {"dropout_res", 4}};
  auto net = onestep::build_network(edm2_root(model));
  net->train();
  torch::NoGradGuard no_grad;  // no forced normalisation between the two passes
  for (auto& p : net->named_parameters())
    if (p.key().find("gain") != std::string::npos) p.value().fill_(1.0);
  auto x = torch::randn({2, 3, 16, 16});
  auto sigma = torch::full({2}, 0.1f);
  EXPECT_TRUE(torch::equal(net->forward(x, sigma), net->forward(x, sigma)));  // no block at <= 4x4
  model["dropout_res"] = 8;
  auto dropped = onestep::build_network(edm2_root(model));
  dropped->train();
  for (auto& p : dropped->named_parameters())
    if (p.key().find("gain") != std::string::npos) p.value().fill_(1.0);
  EXPECT_FALSE(torch::equal(dropped->forward(x, sigma), dropped->forward(x, sigma)));
}

// The full-size edm2-img64-s comparison: a fixture of 280M parameters is not committed; make it with
// tools/make_edm2_fixtures.py --full-s FILE and run with ONESTEP_EDM2_FULL_FIXTURE=FILE (docs/imagenet64.md).
TEST(Edm2UNet, FullSizeSMatchesEdm2WhenFixtureGiven) {
  const char* path = std::getenv("ONESTEP_EDM2_FULL_FIXTURE");
  if (path == nullptr) GTEST_SKIP() << "set ONESTEP_EDM2_FULL_FIXTURE to a file made by make_edm2_fixtures.py --full-s";
  auto content = onestep::load_safetensors(path);
  auto model = onestep::load_model(path, "net.");
  model->eval();
  torch::NoGradGuard no_grad;
  auto in = [&](const std::string& name) { return *content.find("inputs." + name); };
  const double raw = edm2_relative_error(
      model->network().forward(in("x_in"), in("noise_labels"), in("class_labels")), *content.find("expected.raw"));
  const double denoised = edm2_relative_error(
      model->forward(in("x"), in("sigma"), onestep::Scalings::Edm, in("class_labels")), *content.find("expected.denoised"));
  std::printf("[parity] edm2-img64-s full size: max relative error F %.3g, D %.3g\n", raw, denoised);
  EXPECT_LE(raw, 1e-5);
  EXPECT_LE(denoised, 1e-5);
}

}  // namespace
