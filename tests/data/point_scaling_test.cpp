// The map between users' point coordinates and the model's (data.normalize), with values computed by hand.
#include "core/error.h"
#include "data/point_scaling.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"

#include <cmath>

using onestep::Json;
using onestep::PointScaling;
using onestep::testing::error_of;
using ::testing::HasSubstr;

namespace {
// Corners of the box [0, 2] x [0, 4]: mean (1, 2), population variances (1, 4).
torch::Tensor box() { return torch::tensor({0.0, 0.0, 2.0, 0.0, 0.0, 4.0, 2.0, 4.0}).reshape({4, 2}); }
}  // namespace

TEST(PointScaling, IsotropicUsesOneScaleFromTheMeanVariance) {
  const PointScaling s = PointScaling::fit(box(), 0.5, "isotropic");
  ASSERT_EQ(s.mean.size(), 2u);
  EXPECT_DOUBLE_EQ(s.mean[0], 1.0);
  EXPECT_DOUBLE_EQ(s.mean[1], 2.0);
  // Mean variance (1 + 4) / 2 = 2.5: scale = 0.5 / sqrt(2.5) = 0.316227766016838 for both coordinates.
  EXPECT_NEAR(s.scale[0], 0.316227766016838, 1e-15);
  EXPECT_NEAR(s.scale[1], 0.316227766016838, 1e-15);
  // (2, 4) -> ((2 - 1) 0.3162..., (4 - 2) 0.3162...) = (0.316228, 0.632456).
  const torch::Tensor m = s.to_model(torch::tensor({2.0f, 4.0f}).reshape({1, 2}));
  EXPECT_EQ(m.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(m[0][0].item<float>(), 0.316228f, 1e-6);
  EXPECT_NEAR(m[0][1].item<float>(), 0.632456f, 1e-6);
  const torch::Tensor back = s.to_user(m);
  EXPECT_NEAR(back[0][0].item<float>(), 2.0f, 1e-6);
  EXPECT_NEAR(back[0][1].item<float>(), 4.0f, 1e-6);
  // In model units the mean per-coordinate variance is sigma_data^2 = 0.25: (0.1 + 0.4) / 2.
  const torch::Tensor all = s.to_model(box());
  EXPECT_NEAR((all - all.mean(0)).square().mean().item<double>(), 0.25, 1e-12);
}

TEST(PointScaling, PerDimensionGivesEveryCoordinateSigmaData) {
  const PointScaling s = PointScaling::fit(box(), 0.5, "per-dimension");
  EXPECT_DOUBLE_EQ(s.scale[0], 0.5);   // 0.5 / sqrt(1)
  EXPECT_DOUBLE_EQ(s.scale[1], 0.25);  // 0.5 / sqrt(4)
  const torch::Tensor m = s.to_model(torch::tensor({0.0, 0.0}).reshape({1, 2}));
  EXPECT_DOUBLE_EQ(m[0][0].item<double>(), -0.5);  // (0 - 1) 0.5
  EXPECT_DOUBLE_EQ(m[0][1].item<double>(), -0.5);  // (0 - 2) 0.25
}

TEST(PointScaling, NoneIsTheIdentityAndWritesNothing) {
  const PointScaling s = PointScaling::fit(box(), 0.5, "none");
  EXPECT_TRUE(s.is_identity());
  const torch::Tensor x = box();
  EXPECT_TRUE(s.to_user(x).equal(x));
  EXPECT_TRUE(s.to_model(x).equal(x));
  EXPECT_EQ(s.describe(), "identity");
}

TEST(PointScaling, JsonRoundTripAndComparison) {
  const PointScaling s = PointScaling::fit(box(), 0.5, "per-dimension");
  const PointScaling r = PointScaling::from_json(Json::parse(s.to_json().dump()), "test");
  EXPECT_EQ(r.mean, s.mean);
  EXPECT_EQ(r.scale, s.scale);
  EXPECT_TRUE(r.same_as(s));
  EXPECT_FALSE(r.same_as(PointScaling::fit(box(), 0.5, "isotropic")));
  EXPECT_FALSE(r.same_as(PointScaling{}));
  EXPECT_TRUE(PointScaling{}.same_as(PointScaling{}));
}

TEST(PointScaling, BadInputsAreOneLineErrors) {
  EXPECT_THAT(error_of([] { PointScaling::fit(box(), 0.5, "whiten"); }), HasSubstr("data.normalize"));
  const torch::Tensor flat = torch::tensor({0.0, 1.0, 2.0, 1.0}).reshape({2, 2});  // y constant
  EXPECT_THAT(error_of([&] { PointScaling::fit(flat, 0.5, "per-dimension"); }), HasSubstr("zero variance"));
  EXPECT_NO_THROW(PointScaling::fit(flat, 0.5, "isotropic"));
  EXPECT_THAT(error_of([] { PointScaling::from_json(Json{{"mean", {0.0}}}, "ckpt.safetensors"); }),
              HasSubstr("ckpt.safetensors"));
  EXPECT_THAT(error_of([] { PointScaling::from_json(Json{{"mean", {0.0}}, {"scale", {-1.0}}}, "f"); }),
              HasSubstr("positive"));
  const PointScaling s = PointScaling::fit(box(), 0.5, "isotropic");
  EXPECT_THAT(error_of([&] { s.to_user(torch::zeros({3, 3})); }), HasSubstr("2-D"));
}

// One huge finite outlier must not set the scale silently (a row of 1e30 among 1000 points put every sample near
// 1e27): the fit refuses, names the rows and says what to do instead.
TEST(PointScaling, AFewRowsHoldingMostOfTheSpreadAreRefused) {
  torch::manual_seed(0);
  torch::Tensor points = torch::randn({1000, 2}, torch::kFloat64);
  EXPECT_NO_THROW(PointScaling::fit(points, 0.5, "isotropic"));
  EXPECT_NO_THROW(PointScaling::fit(points, 0.5, "per-dimension"));
  points[17][0] = 1e30;
  for (const char* mode : {"isotropic", "per-dimension"}) {
    const std::string error = error_of([&] { PointScaling::fit(points, 0.5, mode); });
    EXPECT_THAT(error, HasSubstr(std::string("data.normalize = ") + mode + ": 10 of the 1000 points (rows 17, "));
    EXPECT_THAT(error, HasSubstr("hold 100% of the spread"));
    EXPECT_THAT(error, HasSubstr("median absolute deviation) and set data.normalize = none"));
  }
  EXPECT_THAT(error_of([&] { PointScaling::fit(points, 0.5, "per-dimension"); }), HasSubstr("of coordinate 0"));
  EXPECT_NO_THROW(PointScaling::fit(points, 0.5, "none"));
}

// At the bound: 100 points (k = 3 rows), 96 at (+-1, 0) and 4 at (+-a, 0), mean 0. The largest 3 rows hold
// 3a^2 / (96 + 4a^2) of the squared deviations: 141 / 284 = 49.6% for a^2 = 47 (accepted), 147 / 292 = 50.3% for
// a^2 = 49 (refused).
TEST(PointScaling, DominatedSpreadBoundIsHalfOfTheSquaredDeviations) {
  auto points_with = [](double a2) {
    torch::Tensor p = torch::zeros({100, 2}, torch::kFloat64);
    for (int64_t i = 0; i < 96; ++i) p[i][0] = i % 2 == 0 ? 1.0 : -1.0;
    for (int64_t i = 96; i < 100; ++i) p[i][0] = (i % 2 == 0 ? 1.0 : -1.0) * std::sqrt(a2);
    return p;
  };
  EXPECT_NO_THROW(PointScaling::fit(points_with(47), 0.5, "isotropic"));
  EXPECT_THAT(error_of([&] { PointScaling::fit(points_with(49), 0.5, "isotropic"); }),
              HasSubstr("3 of the 100 points (rows 9"));
  EXPECT_THAT(error_of([&] { PointScaling::fit(points_with(49), 0.5, "isotropic"); }), HasSubstr("hold 50% of"));
}
