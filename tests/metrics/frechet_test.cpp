#include "metrics/feature_stats.h"
#include "metrics/frechet.h"

#include "core/error.h"
#include "io/npy.h"
#include "build_paths.h"

#include <gtest/gtest.h>

namespace {

const auto float64 = torch::TensorOptions().dtype(torch::kFloat64);

TEST(Frechet, IdenticalGaussiansHaveZeroDistance) {
  torch::manual_seed(1);
  const auto a = torch::randn({16, 16}, float64);
  const auto s = torch::mm(a, a.t()) + 0.1 * torch::eye(16, float64);
  const auto mu = torch::randn({16}, float64);
  EXPECT_NEAR(onestep::frechet_distance(mu, s, mu, s), 0.0, 1e-9);
}

TEST(Frechet, DiagonalCovariancesMatchClosedForm) {
  // Commuting covariances: tr sqrt(S1 S2) = sum sqrt(a_i b_i), so FD = ||dmu||^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
  const auto a = torch::tensor({1.0, 4.0, 9.0, 0.25}, float64);
  const auto b = torch::tensor({4.0, 1.0, 9.0, 1.0}, float64);
  const auto mu1 = torch::tensor({0.0, 1.0, 2.0, 3.0}, float64);
  const auto mu2 = torch::tensor({1.0, 1.0, 0.0, 3.0}, float64);
  const double expected = (1.0 + 0.0 + 4.0 + 0.0) + (1.0 + 1.0 + 0.0 + 0.25);
  EXPECT_NEAR(onestep::frechet_distance(mu1, torch::diag(a), mu2, torch::diag(b)), expected, 1e-12);
}

TEST(Frechet, RotatedDiagonalCovariancesMatchClosedForm) {
  // Same eigenvalues in a common random orthonormal basis: the distance is basis independent.
  torch::manual_seed(2);
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({8, 8}, float64)));
  const auto a = torch::linspace(0.5, 3.0, 8, float64);
  const auto b = torch::linspace(2.0, 0.1, 8, float64);
  const auto s1 = torch::mm(torch::mm(q, torch::diag(a)), q.t());
  const auto s2 = torch::mm(torch::mm(q, torch::diag(b)), q.t());
  const auto zero = torch::zeros({8}, float64);
  const double expected = (a.sqrt() - b.sqrt()).square().sum().item<double>();
  EXPECT_NEAR(onestep::frechet_distance(zero, s1, zero, s2), expected, 1e-10);
}

TEST(Frechet, SingularCovarianceAgainstZeroCovariance) {
  // FD(N(0, S), N(0, 0)) = tr S, also for a rank-deficient S.
  const auto v = torch::tensor({1.0, 2.0, -1.0}, float64);
  const auto s = torch::outer(v, v);
  EXPECT_NEAR(onestep::frechet_distance(torch::zeros({3}, float64), s, torch::zeros({3}, float64), torch::zeros({3, 3}, float64)),
              6.0, 1e-12);
}

TEST(Frechet, AgreesWithScipySqrtmOnRandomCovariances) {
  // Fixture from numpy/scipy: FD with scipy.linalg.sqrtm(S1 @ S2) on random 64-dim SPD matrices, and on
  // rank-deficient sample covariances (40 and 50 samples in 64 dims).
  const auto arrays = onestep::read_npz(ONESTEP_TEST_FIXTURES "/metrics/frechet_random_spd.npz");
  const double expected = arrays.at("fd").item<double>();
  const double fd = onestep::frechet_distance(arrays.at("mu1"), arrays.at("sigma1"), arrays.at("mu2"),
                                              arrays.at("sigma2"));
  EXPECT_NEAR(fd, expected, 1e-6 * std::abs(expected));

  const auto a = onestep::compute_feature_stats(arrays.at("x"));
  const auto b = onestep::compute_feature_stats(arrays.at("y"));
  const double expected_samples = arrays.at("fd_samples").item<double>();
  EXPECT_NEAR(onestep::frechet_distance(a, b), expected_samples, 1e-6 * std::abs(expected_samples));
}

TEST(Frechet, RejectsMismatchedShapes) {
  EXPECT_THROW(onestep::frechet_distance(torch::zeros({3}, float64), torch::eye(3, float64), torch::zeros({4}, float64),
                                         torch::eye(4, float64)),
               onestep::Error);
  EXPECT_THROW(onestep::frechet_distance(torch::zeros({3}, float64), torch::eye(2, float64), torch::zeros({3}, float64),
                                         torch::eye(3, float64)),
               onestep::Error);
}

TEST(Frechet, RejectsNaN) {
  auto s = torch::eye(2, float64);
  s[0][0] = std::nan("");
  EXPECT_THROW(onestep::frechet_distance(torch::zeros({2}, float64), s, torch::zeros({2}, float64), torch::eye(2, float64)),
               onestep::Error);
}

}  // namespace
