#include "config/config.h"
#include "core/error.h"
#include "precond/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using onestep::Json;
using onestep::Scalings;

namespace {
Json small_root(double sigma_min) {
  return Json{{"model",
               {{"arch", "songunet"},
                {"img_resolution", 8},
                {"img_channels", 1},
                {"model_channels", 16},
                {"channel_mult", {1, 2}},
                {"num_blocks", 1},
                {"attn_resolutions", Json::array()}}},
              {"precond", {{"sigma_min", sigma_min}, {"train_scalings", "edm"}}}};
}
}  // namespace

// Values by hand for sigma = 1, sigma_data = 0.5, sigma_min = 0.002 (docs/methods.md section 1).
TEST(Precond, CoefficientsMatchHandValues) {
  onestep::PrecondConfig config;
  auto sigma = torch::tensor({1.0}, torch::kFloat64);
  auto edm = onestep::scaling_coefficients(sigma, config, Scalings::Edm);
  EXPECT_DOUBLE_EQ(edm.c_skip.item<double>(), 0.25 / 1.25);
  EXPECT_DOUBLE_EQ(edm.c_out.item<double>(), 0.5 / std::sqrt(1.25));
  EXPECT_DOUBLE_EQ(edm.c_in.item<double>(), 1 / std::sqrt(1.25));
  EXPECT_DOUBLE_EQ(edm.c_noise.item<double>(), 0.0);
  auto cm = onestep::scaling_coefficients(sigma, config, Scalings::Consistency);
  EXPECT_DOUBLE_EQ(cm.c_skip.item<double>(), 0.25 / (0.998 * 0.998 + 0.25));
  EXPECT_DOUBLE_EQ(cm.c_out.item<double>(), 0.998 * 0.5 / std::sqrt(1.25));
  auto at80 = onestep::scaling_coefficients(torch::tensor({80.0}, torch::kFloat64), config, Scalings::Edm);
  EXPECT_DOUBLE_EQ(at80.c_noise.item<double>(), std::log(80.0) / 4);
}

TEST(Precond, SigmaDataIsConfigurable) {
  Json root{{"precond", {{"sigma_data", 1.0}}}};
  auto config = onestep::PrecondConfig::from_config(root);
  auto k = onestep::scaling_coefficients(torch::tensor({1.0}, torch::kFloat64), config, Scalings::Edm);
  EXPECT_DOUBLE_EQ(k.c_skip.item<double>(), 0.5);
  EXPECT_EQ(config.to_json()["sigma_data"].get<double>(), 1.0);
}

TEST(Precond, RejectsBadKeys) {
  EXPECT_THROW(onestep::PrecondConfig::from_config(Json{{"precond", {{"sigma_dat", 1.0}}}}), onestep::Error);
  EXPECT_THROW(onestep::PrecondConfig::from_config(Json{{"precond", {{"train_scalings", "vp"}}}}), onestep::Error);
  EXPECT_THROW(onestep::PrecondConfig::from_config(Json{{"precond", {{"sigma_data", -1.0}}}}), onestep::Error);
}

// f(x, sigma_min) == x bit for bit with the boundary-exact scalings, for float32 sigma and a non-trivial network.
TEST(Precond, ConsistencyBoundaryIsExact) {
  for (double sigma_min : {0.002, 0.003}) {
    torch::manual_seed(1);
    auto model = onestep::build_model(small_root(sigma_min));
    for (auto& p : model->parameters()) p.data().normal_(0, 0.3);  // a network whose output is far from 0
    auto x = torch::randn({3, 1, 8, 8}) * 0.7;
    auto sigma = torch::full({3}, sigma_min, torch::kFloat32);
    auto y = model->forward(x, sigma, Scalings::Consistency);
    ASSERT_EQ(y.dtype(), torch::kFloat32);
    EXPECT_EQ(std::memcmp(y.data_ptr<float>(), x.data_ptr<float>(), x.numel() * sizeof(float)), 0);
    auto scalar = model->forward(x, torch::tensor(sigma_min), Scalings::Consistency);
    EXPECT_TRUE(torch::equal(scalar, x));
    // EDM scalings are not boundary-exact: the network contributes.
    EXPECT_FALSE(torch::equal(model->forward(x, sigma, Scalings::Edm), x));
  }
}
