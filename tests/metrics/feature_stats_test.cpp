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

// A statistics file whose sigma is no covariance is refused, naming the file.
TEST(FeatureStats, RejectsSigmaThatIsNotSymmetricPositiveSemiDefinite) {
  const auto dir = std::filesystem::temp_directory_path() / ("onestep_stats_psd_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto error_for = [&](const std::string& name, const torch::Tensor& sigma) -> std::string {
    const auto path = dir / name;
    onestep::write_npz(path, {{"mu", torch::zeros({sigma.size(0)}, f64)}, {"sigma", sigma}});
    try {
      onestep::read_feature_stats(path);
    } catch (const onestep::Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const auto negative = error_for("minus_identity.npz", -torch::eye(3, f64));
  EXPECT_NE(negative.find("minus_identity.npz"), std::string::npos) << negative;
  EXPECT_NE(negative.find("not positive semi-definite (smallest eigenvalue -1"), std::string::npos) << negative;
  auto lopsided = torch::eye(3, f64);
  lopsided[0][1] = 0.5;
  const auto asymmetric = error_for("asymmetric.npz", lopsided);
  EXPECT_NE(asymmetric.find("asymmetric.npz: 'sigma' is not symmetric"), std::string::npos) << asymmetric;
  // An indefinite matrix with a positive diagonal: eigenvalues 3 and -1.
  const auto indefinite = error_for("indefinite.npz", torch::tensor({{1.0, 2.0}, {2.0, 1.0}}, f64));
  EXPECT_NE(indefinite.find("not positive semi-definite"), std::string::npos) << indefinite;
  // Genuine covariances pass: a singular one (fewer samples than dimensions) stored as float32 included.
  torch::manual_seed(12);
  const auto singular = direct_covariance(torch::randn({5, 16}, f64)).to(torch::kFloat32);
  EXPECT_EQ(error_for("singular.npz", singular), "(no error)");
  EXPECT_EQ(error_for("zero.npz", torch::zeros({4, 4}, f64)), "(no error)");
  std::filesystem::remove_all(dir);
}
