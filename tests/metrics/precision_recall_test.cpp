#include "metrics/precision_recall.h"

#include "core/error.h"

#include <gtest/gtest.h>

namespace {

TEST(PrecisionRecall, IdenticalSetsArePerfect) {
  torch::manual_seed(7);
  const auto x = torch::randn({200, 16});
  const auto pr = onestep::precision_recall(x, x.clone(), 3, /*block=*/37);
  EXPECT_DOUBLE_EQ(pr.precision, 1.0);
  EXPECT_DOUBLE_EQ(pr.recall, 1.0);
}

TEST(PrecisionRecall, DisjointFarSetsAreZero) {
  torch::manual_seed(8);
  const auto real = torch::randn({100, 8});
  const auto fake = torch::randn({120, 8}) + 100.0;
  const auto pr = onestep::precision_recall(real, fake);
  EXPECT_DOUBLE_EQ(pr.precision, 0.0);
  EXPECT_DOUBLE_EQ(pr.recall, 0.0);
}

TEST(PrecisionRecall, ModeDroppingLowersRecallNotPrecision) {
  // Real data: two far clusters; generated: only the first one. Every generated point is realistic (precision 1),
  // half of the real points are not covered (recall 1/2).
  torch::manual_seed(9);
  const auto a = torch::randn({100, 4});
  const auto b = torch::randn({100, 4}) + 50.0;
  const auto pr = onestep::precision_recall(torch::cat({a, b}), a.clone(), 3, 64);
  EXPECT_DOUBLE_EQ(pr.precision, 1.0);
  EXPECT_DOUBLE_EQ(pr.recall, 0.5);
}

TEST(PrecisionRecall, RadiiAreKthNeighbourDistances) {
  // Points on a line at 0, 1, 3, 7, 15; radius = distance to the 2nd nearest other point, counted by hand.
  const auto x = torch::tensor({0.0f, 1.0f, 3.0f, 7.0f, 15.0f}).unsqueeze(1);
  const auto radii = onestep::kth_neighbour_radii(x, 2, 2);
  const auto expected = torch::tensor({3.0f, 2.0f, 3.0f, 6.0f, 12.0f});
  EXPECT_TRUE(torch::allclose(radii, expected));
}

TEST(PrecisionRecall, RejectsTooFewPointsAndShapeMismatch) {
  EXPECT_THROW(onestep::precision_recall(torch::zeros({3, 2}), torch::zeros({10, 2})), onestep::Error);
  EXPECT_THROW(onestep::precision_recall(torch::randn({10, 2}), torch::randn({10, 3})), onestep::Error);
}

}  // namespace
