#include "metrics/evaluation.h"

#include "core/error.h"
#include "data/dataset.h"
#include "metrics/fmnist_classifier.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

TEST(EvalConfig, DefaultsAndOverrides) {
  const auto defaults = onestep::EvalConfig::from_config(onestep::Json::object());
  EXPECT_EQ(defaults.metric, "fd-fmnist");
  EXPECT_EQ(defaults.steps, (std::vector<int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(defaults.sigma_mid, 0.821);  // iCT/ECT CIFAR-10 (docs/methods.md section 4)
  const onestep::Json root = {{"eval", {{"metric", "fid"}, {"n", 50000}, {"every", 1000}, {"steps", {1}},
                                        {"detector", "inception-2015-12-05.pt"}, {"ref", "cifar10.npz"}}}};
  const auto c = onestep::EvalConfig::from_config(root);
  EXPECT_EQ(c.metric, "fid");
  EXPECT_EQ(c.n, 50000);
  EXPECT_EQ(c.every, 1000);
  EXPECT_EQ(c.detector, "inception-2015-12-05.pt");
  EXPECT_EQ(onestep::EvalConfig::from_config(onestep::Json{{"eval", c.to_json()}}).to_json(), c.to_json());
}

TEST(EvalConfig, RejectsBadValues) {
  using onestep::Json;
  EXPECT_THROW(onestep::EvalConfig::from_config(Json{{"eval", {{"metric", "is"}}}}), onestep::Error);
  EXPECT_THROW(onestep::EvalConfig::from_config(Json{{"eval", {{"nn", 5}}}}), onestep::Error);
  EXPECT_THROW(onestep::EvalConfig::from_config(Json{{"eval", {{"n", 1}}}}), onestep::Error);
  EXPECT_THROW(onestep::EvalConfig::from_config(Json{{"eval", {{"steps", {0}}}}}), onestep::Error);
}

TEST(EvalConfig, MetricKeys) {
  EXPECT_EQ(onestep::metric_key("fd-fmnist", 1), "fd_fmnist_1step");
  EXPECT_EQ(onestep::metric_key("fid", 2), "fid_2step");
  EXPECT_EQ(onestep::metric_key("swd", 18), "swd_18step");
}

TEST(EvalSampler, StepCountsMatchTheSamplerKind) {
  using onestep::Json;
  const auto one = onestep::sampler_for_steps(Json::object(), 1, 0.821);
  EXPECT_EQ(one.sigmas, (std::vector<double>{80.0}));
  const auto two = onestep::sampler_for_steps(Json::object(), 2, 0.5);
  EXPECT_EQ(two.sigmas, (std::vector<double>{80.0, 0.5}));
  EXPECT_THROW(onestep::sampler_for_steps(Json::object(), 3, 0.821), onestep::Error);
  const Json heun{{"sample", {{"kind", "heun"}}}};
  EXPECT_EQ(onestep::sampler_for_steps(heun, 18, 0.821).steps, 18);
  EXPECT_THROW(onestep::sampler_for_steps(heun, 1, 0.821), onestep::Error);  // Heun needs 2 levels or more
}

TEST(EvalPoints, FreshDrawsAreNewSetsOfTheSameDistribution) {
  using onestep::Json;
  const Json root{{"data", {{"dataset", "eight-gaussians"}, {"num_points", 5000}}}, {"eval", {{"n", 4000}}}};
  const auto config = onestep::EvalConfig::from_config(root);
  const auto a = onestep::reference_points(config, root, 0);
  const auto b = onestep::reference_points(config, root, 1);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{4000, 2}));
  EXPECT_TRUE(torch::equal(a, onestep::reference_points(config, root, 0)));  // deterministic
  const auto training = onestep::load_dataset(onestep::DataConfig::from_config(root)).samples;
  EXPECT_FALSE(torch::equal(a, training.slice(0, 0, 4000)));  // never the training points
  EXPECT_FALSE(torch::equal(a, b));
  // Two draws are close; a shifted set is far (sliced W2 of a shift v: the mean of |<v, u>| over directions u,
  // |v| 2/pi in 2-D).
  const double floor = onestep::points_distance(a, b);
  EXPECT_LT(floor, 0.1);
  const double shifted = onestep::points_distance(a, b + torch::tensor({1.0f, 0.0f}));
  EXPECT_GT(shifted, 0.5);
  EXPECT_GT(shifted, 5 * floor);
}

TEST(EvalPoints, ReferenceNeedsAToyDistributionOrAFile) {
  using onestep::Json;
  const Json images{{"data", {{"dataset", "fashion-mnist"}}}};
  EXPECT_THROW(onestep::reference_points(onestep::EvalConfig::from_config(images), images), onestep::Error);
  const Json missing{{"eval", {{"ref", "/nonexistent/points.npy"}}}};
  EXPECT_THROW(onestep::reference_points(onestep::EvalConfig::from_config(missing), missing), onestep::Error);
}

TEST(EvalProgress, LongEvaluationsReportEachStage) {
  // generate+features as a progress line with the seconds of each, then statistics; silent without a label.
  torch::manual_seed(4);
  auto model = onestep::build_model(onestep::load_config_file(onestep::resolve_preset("unet-fmnist-cpu")));
  onestep::FmnistClassifier classifier;
  auto detector = onestep::make_fmnist_detector(classifier, torch::kCPU);
  const auto sampler = onestep::sampler_for_steps(onestep::Json::object(), 1, 0.821);
  ::testing::internal::CaptureStderr();
  const auto labelled = onestep::generated_features(model, sampler, *detector, 12, 5, 3, false, "1-step FD seed 3");
  const std::string report = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(report, ::testing::HasSubstr("1-step FD seed 3 generate+features 12/12 img "));
  EXPECT_THAT(report, ::testing::HasSubstr(" generate_s "));
  EXPECT_THAT(report, ::testing::HasSubstr(" features_s "));
  EXPECT_THAT(report, ::testing::HasSubstr("1-step FD seed 3 statistics (mean, covariance) in "));
  EXPECT_THAT(report, ::testing::Not(::testing::HasSubstr(" 0 img/s")));
  ::testing::internal::CaptureStderr();
  const auto silent = onestep::generated_features(model, sampler, *detector, 12, 5, 3);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(torch::equal(labelled.stats.mu, silent.stats.mu));  // reporting changes nothing
}

}  // namespace
