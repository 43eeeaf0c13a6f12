// Metrics say what they measure: FD-FMNIST only on Fashion-MNIST, the same distance elsewhere named a proxy; the
// default metric of `onestep eval` follows what is scored.
#include "core/error.h"
#include "metrics/evaluation.h"
#include "metrics/metric_names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"

using onestep::default_metric;
using onestep::metric_name;
using onestep::testing::error_of;
using ::testing::HasSubstr;

TEST(MetricNames, FdFmnistOnlyOnFashionMnist) {
  // Fashion-MNIST as the classifier was trained on it (1 x 28 x 28), and padded to 32 by the GPU presets.
  for (const int64_t res : {28, 32}) {
    const auto name = metric_name("fd-fmnist", {1, res, res}, "fashion-mnist");
    EXPECT_EQ(name.label, "FD-FMNIST") << res;
    EXPECT_EQ(name.key_prefix, "fd_fmnist_") << res;
    EXPECT_EQ(name.note, "") << res;
  }
  // Colour photographs, other sizes, or 28 x 28 grayscale of another data set: a proxy, named so, with a note.
  const std::vector<std::pair<std::vector<int64_t>, std::string>> proxies = {
      {{3, 32, 32}, "folder"}, {{1, 64, 64}, "fashion-mnist"}, {{3, 28, 28}, "fashion-mnist"}, {{1, 28, 28}, "mnist"}};
  for (const auto& [shape, dataset] : proxies) {
    const auto name = metric_name("fd-fmnist", shape, dataset);
    EXPECT_EQ(name.id, "fd-fmnist-proxy") << dataset;
    EXPECT_EQ(name.label, "FD in Fashion-MNIST classifier features (proxy)") << dataset;
    EXPECT_EQ(name.key_prefix, "fd_fmnist_proxy_") << dataset;
    EXPECT_THAT(name.note, HasSubstr("not Fashion-MNIST")) << dataset;
    EXPECT_THAT(name.note, HasSubstr("--metric fid --detector")) << dataset;
  }
  EXPECT_THAT(metric_name("fd-fmnist", {3, 32, 32}, "folder").note, HasSubstr("data.dataset = folder"));
  EXPECT_THAT(metric_name("fd-fmnist", {3, 32, 32}, "").note, HasSubstr("3 x 32 x 32 images"));
  // FID and SWD do not name a data set.
  EXPECT_EQ(metric_name("fid", {3, 32, 32}, "folder").label, "FID");
  EXPECT_EQ(metric_name("swd", {2}, "two-moons").label, "SWD");
  EXPECT_THAT(error_of([] { (void)metric_name("kid"); }), HasSubstr("unknown metric 'kid'"));
}

TEST(MetricNames, LogKeysFollowTheName) {
  EXPECT_EQ(onestep::metric_key("fd-fmnist", 1, {1, 28, 28}, "fashion-mnist"), "fd_fmnist_1step");
  EXPECT_EQ(onestep::metric_key("fd-fmnist", 2, {3, 32, 32}, "folder"), "fd_fmnist_proxy_2step");
  EXPECT_EQ(onestep::metric_key("fid", 2, {3, 32, 32}, "folder"), "fid_2step");
}

TEST(MetricNames, DefaultMetricFollowsWhatIsScored) {
  EXPECT_EQ(default_metric("fd-fmnist", {2}, "two-moons", false), "swd");
  EXPECT_EQ(default_metric("fd-fmnist", {1, 28, 28}, "fashion-mnist", false), "fd-fmnist");
  EXPECT_EQ(default_metric("fid", {1, 32, 32}, "fashion-mnist", true), "fid");
  // A user's images: FID when there is a detector (or FID is configured), else how to get one.
  EXPECT_EQ(default_metric("fd-fmnist", {3, 32, 32}, "folder", true), "fid");
  EXPECT_EQ(default_metric("fid", {3, 32, 32}, "folder", false), "fid");
  const std::string e = error_of([] { (void)default_metric("fd-fmnist", {3, 32, 32}, "folder", false); });
  EXPECT_THAT(e, HasSubstr("3 x 32 x 32 images (data.dataset = folder)"));
  EXPECT_THAT(e, HasSubstr("--detector inception-2015-12-05.pt"));
  EXPECT_THAT(e, HasSubstr("tools/convert_inception.py"));
  EXPECT_THAT(e, HasSubstr("--metric fd-fmnist gives a proxy"));
}
