// ADM, the U-Net of openai/consistency_models: parity with the release's own UNetModel and KarrasDenoiser (fixture
// tests/fixtures/networks/adm_unet_small.safetensors, made by tools/make_adm_fixtures.py: the release's code, random
// weights, saved as its .pt files are and converted by tools/convert_openai_cm.py), the release's 1-step and
// multistep samplers on the same weights and noise, and the parameter counts of the ImageNet-64 configurations.
#include "core/random.h"
#include "io/safetensors.h"
#include "networks/adm_unet.h"
#include "networks/mp_layers.h"
#include "precond/model.h"
#include "samplers/sampler.h"
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

const std::string kAdmFixture = std::string(ONESTEP_TEST_FIXTURES) + "/networks/adm_unet_small.safetensors";

double adm_relative_error(const torch::Tensor& actual, const torch::Tensor& expected) {
  return ((actual - expected).abs().max() / expected.abs().max()).item<double>();
}

onestep::Json adm_root(onestep::Json model) {
  model["arch"] = "adm";
  return onestep::Json{{"model", model}};
}

// F and D of a fixture against the release's outputs, relative to the largest output value.
void expect_adm_parity(const std::string& path, double bound) {
  auto content = onestep::load_safetensors(path);
  onestep::set_cuda_tf32(false);
  auto model = onestep::load_model(path, "net.");
  ASSERT_EQ(model->model_config().at("arch"), "adm");
  model->eval();
  torch::NoGradGuard no_grad;
  auto in = [&](const std::string& name) { return *content.find("inputs." + name); };
  const torch::Tensor raw = model->network().forward(in("x_in"), in("noise_labels"), in("one_hot"));
  const double raw_error = adm_relative_error(raw, *content.find("expected.raw"));
  EXPECT_LE(raw_error, bound);
  // The release's consistency models: boundary-condition scalings (get_scalings_for_boundary_condition).
  EXPECT_EQ(model->precond().sample_scalings, onestep::Scalings::Consistency);
  const torch::Tensor d = model->forward(in("x"), in("sigma"), onestep::Scalings::Consistency, in("one_hot"));
  const double denoised_error = adm_relative_error(d, *content.find("expected.denoised"));
  EXPECT_LE(denoised_error, bound);
  std::printf("[parity] %s: max relative error F %.3g, D %.3g\n", path.c_str(), raw_error, denoised_error);
}

TEST(AdmUNet, MatchesConsistencyModelsReleaseWithinFloat32Rounding) {
  expect_adm_parity(kAdmFixture, 1e-5);
  // The fixture is sensitive: another class, or the legacy (head, q|k|v) channel order, moves F past the bound.
  auto content = onestep::load_safetensors(kAdmFixture);
  auto model = onestep::load_model(kAdmFixture, "net.");
  model->eval();
  torch::NoGradGuard no_grad;
  auto in = [&](const std::string& name) { return *content.find("inputs." + name); };
  const torch::Tensor& expected = *content.find("expected.raw");
  auto& net = model->network();
  EXPECT_GT(adm_relative_error(net.forward(in("x_in"), in("noise_labels"), in("one_hot").roll(1, 1)), expected), 1e-3);
  auto params = model->named_parameters();
  torch::Tensor qkv = params["model.input_blocks.1.1.qkv.weight"];
  const torch::Tensor stored = qkv.clone();
  const int64_t c = qkv.size(1), heads = c / 16;
  // (three, heads, d) -> (heads, three, d): guided-diffusion's QKVAttentionLegacy layout.
  qkv.copy_(stored.reshape({3, heads, 16, c, 1, 1}).transpose(0, 1).reshape(stored.sizes()));
  EXPECT_GT(adm_relative_error(net.forward(in("x_in"), in("noise_labels"), in("one_hot")), expected), 1e-4);
  qkv.copy_(stored);
}

// karras_sample of the release with sampler="onestep" and "multistep" (ts 0,22,39 of 40 Karras levels), on the
// fixture's weights, latents and noise stream, against onestep's consistency sampler with the [sample] section the
// converter recorded and `--steps 1` / `--steps 2` (with_steps takes the recorded second level).
TEST(AdmUNet, SamplersReproduceTheReleasesOnestepAndMultistep) {
  auto content = onestep::load_safetensors(kAdmFixture);
  auto model = onestep::load_model(kAdmFixture, "net.");
  const auto metadata = onestep::read_safetensors_metadata(kAdmFixture);
  const onestep::Json recorded = onestep::Json::parse(metadata.at("onestep_config"));
  const onestep::SamplerConfig config = onestep::SamplerConfig::from_config(recorded);
  ASSERT_EQ(config.sigmas.size(), 2u);
  // t_22 = (80^(1/7) + 22/39 (0.002^(1/7) - 80^(1/7)))^7 (karras_diffusion.py stochastic_iterative_sampler).
  const double hi = std::pow(80.0, 1 / 7.0), lo = std::pow(0.002, 1 / 7.0);
  EXPECT_NEAR(config.sigmas[1], std::pow(hi + 22.0 / 39.0 * (lo - hi), 7.0), 1e-12);
  EXPECT_TRUE(config.clip_denoised);
  EXPECT_EQ(onestep::resolved_renoise(config, *model), onestep::Renoise::Ict);
  const torch::Tensor latents = *content.find("inputs.latents");
  const torch::Tensor labels = *content.find("inputs.one_hot");
  const auto seed = content.find("inputs.noise_seed")->item<int64_t>();
  for (int64_t steps : {1, 2}) {
    const auto sampler = onestep::with_steps(config, steps, config.sigmas[1]);
    at::Generator generator = onestep::make_generator(torch::kCPU, static_cast<uint64_t>(seed));
    const torch::Tensor x = onestep::run_sampler(model, sampler, latents, generator, labels);
    const torch::Tensor& expected = *content.find(steps == 1 ? "expected.onestep" : "expected.multistep");
    EXPECT_LE((x - expected).abs().max().item<double>(), 1e-5) << steps << " steps";
  }
  // Without the clamp the 2-step result differs (the first denoised output leaves [-1, 1] on these weights).
  auto unclamped = onestep::with_steps(config, 2, config.sigmas[1]);
  unclamped.clip_denoised = false;
  at::Generator generator = onestep::make_generator(torch::kCPU, static_cast<uint64_t>(seed));
  EXPECT_GT((onestep::run_sampler(model, unclamped, latents, generator, labels) - *content.find("expected.multistep"))
                .abs()
                .max()
                .item<double>(),
            1e-3);
}

// The 64x64 release configuration, once: a fixture of about 1.2 GB made by
// `tools/make_adm_fixtures.py --full FILE`, given by ONESTEP_ADM_FULL_FIXTURE (skipped otherwise).
TEST(AdmUNet, FullSizeMatchesReleaseWhenFixtureGiven) {
  const char* path = std::getenv("ONESTEP_ADM_FULL_FIXTURE");
  if (path == nullptr) GTEST_SKIP() << "ONESTEP_ADM_FULL_FIXTURE not set";
  expect_adm_parity(path, 1e-5);
}

// The release's own count (tools/make_adm_fixtures.py --count: cm/unet.py UNetModel with launch.sh's ImageNet-64
// arguments, and iCT-deep's twice the res blocks).
TEST(AdmUNet, ParameterCountsEqualTheRelease) {
  for (const auto& [blocks, count] : {std::pair<int64_t, int64_t>{3, 295899267}, {6, 495357699}}) {
    onestep::MetaInit meta;
    auto net = onestep::build_network(adm_root({{"num_res_blocks", blocks}}));
    int64_t total = 0;
    for (const auto& p : net->parameters()) total += p.numel();
    EXPECT_EQ(total, count) << blocks << " res blocks";
    EXPECT_TRUE(net->parameters().front().is_meta());
  }
}

TEST(AdmUNet, ParameterNamesAreTheReleases) {
  auto net = onestep::build_network(adm_root({{"img_resolution", 8}, {"model_channels", 32}, {"channel_mult", {1, 2}},
                                              {"num_res_blocks", 1}, {"attn_resolutions", {4}},
                                              {"num_head_channels", 32}, {"label_dim", 10}}));
  auto params = net->named_parameters();
  for (const char* name : {"time_embed.0.weight", "time_embed.2.bias", "label_emb.weight", "input_blocks.0.0.weight",
                           "input_blocks.1.0.in_layers.0.weight", "input_blocks.1.0.in_layers.2.weight",
                           "input_blocks.1.0.emb_layers.1.weight", "input_blocks.1.0.out_layers.3.bias",
                           "input_blocks.2.0.out_layers.0.weight", "input_blocks.3.0.skip_connection.weight",
                           "input_blocks.3.1.qkv.weight", "input_blocks.3.1.proj_out.weight",
                           "middle_block.1.norm.weight", "middle_block.2.in_layers.2.weight",
                           "output_blocks.1.2.in_layers.2.weight", "output_blocks.2.0.skip_connection.weight",
                           "out.0.weight", "out.2.weight"})
    EXPECT_TRUE(params.contains(name)) << name;
  // Scale-shift: the embedding projection gives 2 x 32 channels at the first level.
  EXPECT_EQ(params["input_blocks.1.0.emb_layers.1.weight"].size(0), 64);
  // zero_module layers start at zero, so the untrained network outputs 0 (cm/unet.py).
  torch::NoGradGuard no_grad;
  auto y = net->forward(torch::randn({2, 3, 8, 8}), torch::zeros({2}),
                        torch::one_hot(torch::tensor({1, 2}), 10).to(torch::kFloat32));
  EXPECT_EQ(y.abs().max().item<float>(), 0.0f);
}

TEST(AdmUNet, RefusesBadConfigurationsNamingTheKey) {
  EXPECT_NE(error_of([] { onestep::build_network(adm_root({{"model_channels", 40}})); }).find("multiple of 32"),
            std::string::npos);
  EXPECT_NE(error_of([] { onestep::build_network(adm_root({{"num_head_channels", 100}})); }).find("num_head_channels"),
            std::string::npos);
  EXPECT_NE(error_of([] { onestep::build_network(adm_root({{"img_resolution", 60}})); }).find("img_resolution"),
            std::string::npos);
  EXPECT_NE(error_of([] { onestep::build_network(adm_root({{"num_blocks", 3}})); }).find("num_blocks"),
            std::string::npos);
  EXPECT_NE(error_of([] { onestep::build_network(adm_root({{"noise_label_scale", 0}})); }).find("noise_label_scale"),
            std::string::npos);
}

}  // namespace
