#include "metrics/evaluation.h"

#include "core/error.h"

#include <gtest/gtest.h>

namespace {

TEST(EvalConfig, DefaultsAndOverrides) {
  const auto defaults = onestep::EvalConfig::from_config(onestep::Json::object());
  EXPECT_EQ(defaults.metric, "fd-fmnist");
  EXPECT_EQ(defaults.steps, (std::vector<int64_t>{1, 2}));
  EXPECT_DOUBLE_EQ(defaults.sigma_mid, 0.821);  // iCT/ECT CIFAR-10 (SPEC sections 2, 3)
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
}

}  // namespace
