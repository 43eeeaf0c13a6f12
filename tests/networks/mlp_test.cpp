#include "core/error.h"
#include "networks/mlp.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

using onestep::Json;
using onestep::Mlp;
using onestep::MlpConfig;
using ::testing::HasSubstr;

namespace {
MlpConfig mlp_config(Json model) {
  model["arch"] = "mlp";
  return MlpConfig::from_config(Json{{"model", model}});
}
std::string config_error(Json model) {
  try {
    (void)mlp_config(std::move(model));
  } catch (const onestep::Error& e) {
    return e.what();
  }
  return "(no error)";
}
}  // namespace

// The encoding [x, sin(2^k x), cos(2^k x)], values computed by hand: x = (0.5, -1), k = 0, 1.
TEST(Mlp, InputEncodingIsSinCosAtPowersOfTwo) {
  const auto x = torch::tensor({0.5f, -1.0f}).reshape({1, 2});
  EXPECT_TRUE(torch::equal(onestep::encode_input(x, 0), x));
  const auto e = onestep::encode_input(x, 2);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{1, 10}));
  const std::vector<double> expected = {0.5,          -1.0,         std::sin(0.5), std::sin(-1.0), std::cos(0.5),
                                        std::cos(-1.0), std::sin(1.0), std::sin(-2.0), std::cos(1.0),  std::cos(-2.0)};
  for (int64_t i = 0; i < 10; ++i) EXPECT_NEAR(e[0][i].item<double>(), expected[static_cast<size_t>(i)], 1e-6) << i;
}

// Xavier on a 2 -> 256 layer draws from +-sqrt(6 / 258) = +-0.152; Kaiming-uniform from +-sqrt(3 / 2) = +-1.22, so the
// input features start at the scale of the noise embedding they are added to.
TEST(Mlp, InputInitScalesTheFirstLayer) {
  torch::manual_seed(0);
  Mlp xavier(mlp_config({{"hidden", 256}, {"num_layers", 1}}));
  const double xavier_max = xavier->named_parameters()["input.weight"].abs().max().item<double>();
  EXPECT_LE(xavier_max, std::sqrt(6.0 / 258.0));
  Mlp kaiming(mlp_config({{"hidden", 256}, {"num_layers", 1}, {"input_init", "kaiming_uniform"}}));
  const auto w = kaiming->named_parameters()["input.weight"];
  EXPECT_LE(w.abs().max().item<double>(), std::sqrt(1.5));
  EXPECT_NEAR(w.square().mean().item<double>(), 0.5, 0.05);  // variance 1 / fan_in
  // The hidden layers keep Xavier.
  EXPECT_LE(kaiming->named_parameters()["layers.0.weight"].abs().max().item<double>(), std::sqrt(6.0 / 512.0));
}

TEST(Mlp, InputFrequenciesWidenTheInputLayerAndRoundTrip) {
  const MlpConfig c = mlp_config({{"hidden", 8}, {"num_layers", 1}, {"noise_channels", 4}, {"input_frequencies", 3}});
  EXPECT_EQ(c.input_features(), 2 * 7);
  Mlp net(c);
  EXPECT_EQ(net->named_parameters()["input.weight"].sizes(), (std::vector<int64_t>{8, 14}));
  const auto out = net->forward(torch::randn({5, 2}), torch::zeros({5}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{5, 2}));
  const MlpConfig back = MlpConfig::from_config(Json{{"model", c.to_json()}});
  EXPECT_EQ(back.input_frequencies, 3);
  EXPECT_EQ(back.input_init, "xavier_uniform");
  EXPECT_THAT(c.describe(), HasSubstr("3 frequencies"));
}

TEST(Mlp, BadInputOptionsNameTheKey) {
  EXPECT_THAT(config_error({{"input_frequencies", -1}}), HasSubstr("model.input_frequencies"));
  EXPECT_THAT(config_error({{"input_frequencies", 40}}), HasSubstr("model.input_frequencies"));
  EXPECT_THAT(config_error({{"input_init", "orthogonal"}}), HasSubstr("input_init"));
}
