#include "core/error.h"
#include "metrics/sliced_wasserstein.h"

#include <gtest/gtest.h>

using namespace onestep;

TEST(SlicedWasserstein, IdenticalSetsAreZeroAndShiftGivesShift) {
  torch::manual_seed(0);
  const auto a = torch::randn({1000, 2});
  EXPECT_NEAR(sliced_wasserstein(a, a, 64, 1), 0.0, 1e-12);
  // Shifting by v moves every projection by <v, u>: W1 = mean |<v, u>| = |v| * 2/pi for uniform directions in 2-D.
  const auto shifted = a + torch::tensor({3.0f, 0.0f});
  EXPECT_NEAR(sliced_wasserstein(a, shifted, 1000, 1), 3.0 * 2.0 / M_PI, 0.1);
  EXPECT_NEAR(sliced_wasserstein(a, shifted, 1000, 1, 2), 3.0 * 2.0 / M_PI, 0.1);
  // Deterministic for a seed.
  const auto b = torch::randn({800, 2});
  EXPECT_EQ(sliced_wasserstein(a, b, 32, 5), sliced_wasserstein(a, b, 32, 5));
  EXPECT_LT(sliced_wasserstein(a, b, 128, 5), 0.1);  // same distribution, different draws
  EXPECT_THROW(sliced_wasserstein(a, torch::randn({10, 3}), 8, 0), Error);
}
