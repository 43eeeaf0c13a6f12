#include "metrics/feature_stats.h"

#include "core/error.h"
#include "io/npy.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace {

const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);

// Unbiased covariance computed directly, in float64.
torch::Tensor direct_covariance(const torch::Tensor& x) {
  const auto centered = x - x.mean(0);
  return torch::mm(centered.t(), centered) / (x.size(0) - 1);
}

TEST(FeatureStats, StreamingBatchesEqualOneShot) {
  torch::manual_seed(3);
  const auto x = torch::randn({300, 7}, f64) * 2.0 + 5.0;
  onestep::FeatureStatsAccumulator acc(7);
  acc.add(x.slice(0, 0, 1));  // a single-row batch, then uneven ones
  acc.add(x.slice(0, 1, 128));
  acc.add(x.slice(0, 128, 300));
  const auto stats = acc.finish();
  EXPECT_EQ(stats.count, 300);
  EXPECT_TRUE(torch::allclose(stats.mu, x.mean(0), 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(stats.sigma, direct_covariance(x), 1e-10, 1e-12));
}

TEST(FeatureStats, LargeOffsetDoesNotCancel) {
  // Features around 1e6 with unit spread: a plain sum of squares in float64 would lose most digits.
  torch::manual_seed(4);
  const auto noise = torch::randn({1000, 3}, f64);
  onestep::FeatureStatsAccumulator acc(3);
  for (int i = 0; i < 10; ++i) acc.add(noise.slice(0, i * 100, (i + 1) * 100) + 1e6);
  const auto stats = acc.finish();
  EXPECT_TRUE(torch::allclose(stats.sigma, direct_covariance(noise), 1e-8, 1e-8));
}

TEST(FeatureStats, CovarianceIsExactlySymmetric) {
  torch::manual_seed(5);
  const auto stats = onestep::compute_feature_stats(torch::randn({50, 20}));
  EXPECT_TRUE(torch::equal(stats.sigma, stats.sigma.t()));
  EXPECT_EQ(stats.sigma.scalar_type(), torch::kFloat64);
}

TEST(FeatureStats, RejectsBadInput) {
  onestep::FeatureStatsAccumulator acc(4);
  EXPECT_THROW(acc.add(torch::zeros({3, 5})), onestep::Error);
  EXPECT_THROW(acc.add(torch::full({2, 4}, std::nan(""))), onestep::Error);
  acc.add(torch::zeros({1, 4}));
  EXPECT_THROW(acc.finish(), onestep::Error);  // one vector has no covariance
}

TEST(FeatureStats, NpzRoundTripAsFloat64) {
  torch::manual_seed(6);
  const auto stats = onestep::compute_feature_stats(torch::randn({40, 6}));
  const auto path = std::filesystem::temp_directory_path() / ("onestep_stats_" + std::to_string(::getpid()) + ".npz");
  onestep::write_feature_stats(path, stats);
  const auto raw = onestep::read_npz(path);
  EXPECT_EQ(raw.at("mu").scalar_type(), torch::kFloat64);
  EXPECT_EQ(raw.at("sigma").sizes(), (std::vector<int64_t>{6, 6}));
  const auto back = onestep::read_feature_stats(path);
  EXPECT_TRUE(torch::equal(back.mu, stats.mu));
  EXPECT_TRUE(torch::equal(back.sigma, stats.sigma));
  std::filesystem::remove(path);
}

TEST(FeatureStats, ReadsFloat32StatsAndRejectsBadFiles) {
  const auto dir = std::filesystem::temp_directory_path() / ("onestep_stats_bad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  onestep::write_npz(dir / "f32.npz", {{"mu", torch::zeros({3})}, {"sigma", torch::eye(3)}});
  const auto stats = onestep::read_feature_stats(dir / "f32.npz");
  EXPECT_EQ(stats.sigma.scalar_type(), torch::kFloat64);
  onestep::write_npz(dir / "nomu.npz", {{"sigma", torch::eye(3)}});
  EXPECT_THROW(onestep::read_feature_stats(dir / "nomu.npz"), onestep::Error);
  onestep::write_npz(dir / "shape.npz", {{"mu", torch::zeros({3})}, {"sigma", torch::eye(4)}});
  EXPECT_THROW(onestep::read_feature_stats(dir / "shape.npz"), onestep::Error);
  EXPECT_THROW(onestep::read_feature_stats(dir / "missing.npz"), onestep::Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
