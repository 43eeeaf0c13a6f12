#include "config/config.h"
#include "core/error.h"
#include "networks/song_unet.h"
#include "precond/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"

using onestep::Json;
using ::testing::HasSubstr;

namespace {
using onestep::testing::error_of;
int64_t parameter_count(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}
Json small_unet(const std::string& variant) {
  return Json{{"model",
               {{"arch", "songunet"},
                {"variant", variant},
                {"img_resolution", 8},
                {"img_channels", 2},
                {"model_channels", 16},
                {"channel_mult", {1, 2}},
                {"num_blocks", 1},
                {"attn_resolutions", {4}},
                {"label_dim", 3},
                {"augment_dim", 2}}}};
}
}  // namespace

// The unconditional DDPM++ CIFAR-10 network has exactly 55,732,739 parameters and costs about 21.2 GMAC per image
// (docs/methods.md section 9). Built on CPU, no forward pass.
TEST(SongUNet, DdpmppCifar10CountsAndKeysMatchEdm) {
  torch::manual_seed(0);
  auto model = onestep::build_model(onestep::load_toml_file(onestep::resolve_preset("ddpmpp-cifar10")));
  EXPECT_EQ(parameter_count(*model), 55732739);
  const double gmac = static_cast<double>(onestep::forward_macs(model)) / 1e9;
  EXPECT_NEAR(gmac, 21.2, 21.2 * 0.02);

  // State-dict keys follow EDM's (same model: building the 55.7M network once keeps the test fast).
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  for (const auto& item : model->named_buffers()) names.insert(item.key());
  for (const char* key : {"model.map_layer0.weight", "model.map_layer1.bias", "model.enc.32x32_conv.weight",
                          "model.enc.32x32_block0.norm0.weight", "model.enc.32x32_block0.affine.weight",
                          "model.enc.16x16_down.skip.weight", "model.enc.16x16_down.conv0.resample_filter",
                          "model.enc.16x16_block0.qkv.weight", "model.dec.8x8_in0.proj.bias",
                          "model.dec.16x16_block4.qkv.weight", "model.dec.16x16_up.conv0.weight",
                          "model.dec.32x32_aux_norm.weight", "model.dec.32x32_aux_conv.weight"})
    EXPECT_TRUE(names.count(key)) << key;
  EXPECT_FALSE(names.count("model.dec.16x16_block3.qkv.weight"));  // only the last 16x16 decoder block attends
  EXPECT_FALSE(names.count("model.enc.32x32_conv.resample_filter"));
}

TEST(SongUNet, NcsnppAddsFourierBufferAndResidualEncoder) {
  // The preset's option set on a narrow network (the 56M build is covered above for DDPM++).
  Json root = onestep::load_toml_file(onestep::resolve_preset("ncsnpp-cifar10"));
  root["model"]["model_channels"] = 16;
  auto model = onestep::build_model(root);
  std::set<std::string> names;
  for (const auto& item : model->named_buffers()) names.insert(item.key());
  EXPECT_TRUE(names.count("model.map_noise.freqs"));
  int64_t found = 0;
  for (const auto& item : model->named_parameters()) found += item.key() == "model.enc.16x16_aux_residual.weight";
  EXPECT_EQ(found, 1);
  auto& net = dynamic_cast<onestep::SongUNetImpl&>(model->network());
  EXPECT_EQ(net.config().channel_mult_noise, 2);
  EXPECT_EQ(net.config().resample_filter, (std::vector<double>{1, 3, 3, 1}));
}

TEST(SongUNet, ForwardShapesForEveryEncoderDecoderCombination) {
  for (const char* variant : {"ddpmpp", "ncsnpp"})
    for (const char* encoder : {"standard", "skip", "residual"})
      for (const char* decoder : {"standard", "skip"}) {
        Json root = small_unet(variant);
        root["model"]["encoder_type"] = encoder;
        root["model"]["decoder_type"] = decoder;
        auto model = onestep::build_model(root);
        model->eval();
        torch::NoGradGuard no_grad;
        auto x = torch::randn({2, 2, 8, 8});
        auto labels = torch::eye(3).slice(0, 0, 2);
        auto y = model->forward(x, torch::tensor({0.5f, 3.0f}), onestep::Scalings::Edm, labels, torch::randn({2, 2}));
        EXPECT_EQ(y.sizes(), x.sizes()) << variant << encoder << decoder;
        EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
        EXPECT_GT(onestep::forward_macs(model), 0);
      }
}

TEST(SongUNet, RejectsBadConfig) {
  Json root = small_unet("ddpmpp");
  root["model"]["img_resolution"] = 7;
  EXPECT_THAT(error_of([&] { onestep::build_model(root); }), HasSubstr("img_resolution"));
  root = small_unet("ddpmpp");
  root["model"]["encoder_type"] = "fancy";
  EXPECT_THAT(error_of([&] { onestep::build_model(root); }), HasSubstr("model.encoder_type"));
  root = small_unet("ddpmpp");
  root["model"]["num_blockz"] = 2;
  EXPECT_THAT(error_of([&] { onestep::build_model(root); }), HasSubstr("num_blockz"));
  root = small_unet("ddpmpp");
  root["model"]["arch"] = "transformer";
  EXPECT_THAT(error_of([&] { onestep::build_model(root); }), HasSubstr("model.arch"));
}

TEST(SongUNet, WrongInputShapeIsAnError) {
  auto model = onestep::build_model(small_unet("ddpmpp"));
  EXPECT_THAT(error_of([&] { model->forward(torch::randn({1, 3, 8, 8}), torch::ones({1}), onestep::Scalings::Edm); }),
              HasSubstr("SongUNet expects input"));
}

TEST(Mlp, ForwardAndCount) {
  Json root = onestep::load_toml_file(onestep::resolve_preset("mlp-2d"));
  auto model = onestep::build_model(root);
  EXPECT_EQ(model->sample_shape(), (std::vector<int64_t>{2}));
  auto y = model->forward(torch::randn({5, 2}), torch::full({5}, 1.0f), onestep::Scalings::Consistency);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{5, 2}));
  // 64->256, 256->256, 2->256, 4 x 256->256, 256->2
  EXPECT_EQ(onestep::forward_macs(model), 64 * 256 + 256 * 256 + 2 * 256 + 4 * 256 * 256 + 256 * 2);
}
