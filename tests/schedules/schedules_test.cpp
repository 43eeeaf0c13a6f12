// Reference numbers computed once with Python's math module (float64) from the papers' formulas (docs/methods.md).
#include "core/error.h"
#include "schedules/schedules.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

using namespace onestep;

TEST(Karras, ElevenLevelsMatchReference) {
  const auto s = karras_sigmas(11, 0.002, 80.0, 7.0);
  ASSERT_EQ(s.size(), 11u);
  EXPECT_DOUBLE_EQ(s[0], 0.002);
  EXPECT_NEAR(s[1], 0.01672075323499393, 1e-15);
  EXPECT_NEAR(s[5], 2.515218976147159, 1e-12);
  EXPECT_NEAR(s[9], 45.313734075226606, 1e-11);
  EXPECT_DOUBLE_EQ(s[10], 80.0);
  EXPECT_THROW(karras_sigmas(1, 0.002, 80, 7), Error);
}

TEST(IctCurriculum, DoublingFor400kIterations) {
  EXPECT_EQ(ict_doubling_interval(400000, 10, 1280), 50000);
  EXPECT_EQ(ict_num_levels(0, 400000, 10, 1280), 11);
  EXPECT_EQ(ict_num_levels(49999, 400000, 10, 1280), 11);
  EXPECT_EQ(ict_num_levels(50000, 400000, 10, 1280), 21);
  EXPECT_EQ(ict_num_levels(100000, 400000, 10, 1280), 41);
  EXPECT_EQ(ict_num_levels(399999, 400000, 10, 1280), 1281);
  EXPECT_EQ(ict_num_levels(10000000, 400000, 10, 1280), 1281);  // capped at s1 + 1
  EXPECT_EQ(ict_doubling_interval(1000, 10, 1280), 125);
  EXPECT_EQ(ict_num_levels(124, 1000, 10, 1280), 11);
  EXPECT_EQ(ict_num_levels(125, 1000, 10, 1280), 21);
}

TEST(CtCurriculum, SquareRootScheduleAndTeacherDecay) {
  EXPECT_EQ(ct_num_levels(0, 1000, 2, 150), 2);
  EXPECT_EQ(ct_num_levels(1, 1000, 2, 150), 6);
  EXPECT_EQ(ct_num_levels(250, 1000, 2, 150), 76);
  EXPECT_EQ(ct_num_levels(500, 1000, 2, 150), 107);
  EXPECT_EQ(ct_num_levels(999, 1000, 2, 150), 151);
  EXPECT_NEAR(ct_teacher_decay(2, 2, 0.9), 0.9, 1e-15);  // N = s0 -> mu0
  EXPECT_NEAR(ct_teacher_decay(107, 2, 0.9), 0.9980325824752019, 1e-15);
}

TEST(IndexDistribution, LognormalMatchesErfReference) {
  const auto p = lognormal_index_probabilities(karras_sigmas(6, 0.002, 80, 7), -1.1, 2.0);
  const double expected[] = {0.2443699722169109, 0.4589958689905245, 0.22305067970074519, 0.06065999846374003,
                             0.012923480628079232};
  ASSERT_EQ(p.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(p[i], expected[i], 1e-12) << i;
  const auto u = uniform_index_probabilities(5);
  ASSERT_EQ(u.size(), 4u);
  EXPECT_DOUBLE_EQ(u[3], 0.25);
}

TEST(IndexDistribution, SamplesFollowProbabilitiesAndAreSeeded) {
  const std::vector<double> p = {0.1, 0.6, 0.3};
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto a = sample_indices(p, 20000, g1);
  EXPECT_TRUE(torch::equal(a, sample_indices(p, 20000, g2)));
  EXPECT_EQ(a.min().item<int64_t>(), 0);
  EXPECT_EQ(a.max().item<int64_t>(), 2);
  EXPECT_NEAR((a == 1).to(torch::kFloat64).mean().item<double>(), 0.6, 0.02);
}

TEST(Lognormal, LogHasRequestedMoments) {
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto s = sample_lognormal(50000, -1.2, 1.2, g).log();
  EXPECT_NEAR(s.mean().item<double>(), -1.2, 0.03);
  EXPECT_NEAR(s.std().item<double>(), 1.2, 0.03);
}

TEST(EctMapping, SigmoidConstAndPaperExponent) {
  EctMapping m;  // sigmoid, k 8, b 1, q 2, code's exponent stage + 1
  EXPECT_NEAR(m.r(1.0, 2), 0.6060585786300049, 1e-14);
  EXPECT_NEAR(m.r(0.1, 3), 0.069998959373947, 1e-14);
  EXPECT_NEAR(m.r(5.0, 1), 3.6830714907571513, 1e-13);
  EXPECT_NEAR(m.r(80.0, 0), 40.0, 1e-12);
  EXPECT_EQ(m.r(1.0, 0), 0.0);  // clamped: n(1) / 2 > 1
  EctMapping paper = m;
  paper.paper_exponent = true;
  EXPECT_NEAR(paper.r(1.0, 2), 0.2121171572600098, 1e-14);
  EXPECT_EQ(paper.r(80.0, 0), 0.0);  // stage 0 of the paper: r = 0, plain diffusion
  EctMapping c = m;
  c.kind = EctMappingKind::Const;
  EXPECT_NEAR(c.r(2.0, 3), 1.875, 1e-14);
  EXPECT_NEAR(c.r(1.0, 0), 0.5, 1e-14);
  // Tensor version agrees with the scalar one.
  const auto t = torch::tensor({1.0, 0.1, 5.0, 80.0}, torch::kFloat64);
  const auto r = m.r(t, 1);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(r[i].item<double>(), m.r(t[i].item<double>(), 1), 1e-12);
  EXPECT_EQ(m.stage(3199999), 0);
  EXPECT_EQ(m.stage(3200000), 1);
}
