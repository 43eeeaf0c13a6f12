#include "trainer/ema.h"

#include <gtest/gtest.h>

namespace {
onestep::Denoiser tiny_mlp() {
  torch::manual_seed(0);
  return onestep::build_model(onestep::Json{
      {"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 8}, {"num_layers", 2}, {"noise_channels", 4}}}});
}
}  // namespace

TEST(Ema, NamesAndBetas) {
  onestep::EmaRule fixed;
  fixed.beta = 0.99993;
  EXPECT_EQ(fixed.name(), "0.99993");
  EXPECT_DOUBLE_EQ(fixed.beta_for(1024, 123456), 0.99993);

  onestep::EmaRule edm;  // EDM (docs/methods.md section 3): half-life 0.5 Mimg, ramp 0.05
  edm.half_life = true;
  edm.half_life_mimg = 0.5;
  edm.ramp = 0.05;
  EXPECT_EQ(edm.name(), "hl0.5");
  EXPECT_DOUBLE_EQ(edm.beta_for(512, 0), 0.0);  // first step: the average becomes a copy
  // h = min(5e5, 0.05 * 1e6) = 5e4: 0.5^(512 / 5e4)
  EXPECT_NEAR(edm.beta_for(512, 1000000), 0.99292730295456189, 1e-15);
  // h = min(5e5, 0.05 * 2e7) = 5e5: 0.5^(512 / 5e5)
  EXPECT_NEAR(edm.beta_for(512, 20000000), 0.99929046912326991, 1e-15);
  edm.ramp = 0;
  EXPECT_NEAR(edm.beta_for(512, 0), 0.99929046912326991, 1e-15);
}

TEST(Ema, UpdateIsConvexCombinationAndCopyIsIndependent) {
  auto model = tiny_mlp();
  onestep::EmaRule rule;
  rule.beta = 0.9;
  onestep::Ema ema(rule, model);
  auto before = ema.model()->parameters().front().clone();
  EXPECT_TRUE(torch::equal(before, model->parameters().front()));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(1.0);
  }
  EXPECT_TRUE(torch::equal(ema.model()->parameters().front(), before));  // its own storage
  ema.update(model, 16, 0);
  // 0.9 * w0 + 0.1 * (w0 + 1) = w0 + 0.1
  EXPECT_TRUE(torch::allclose(ema.model()->parameters().front(), before + 0.1, 1e-6, 1e-6));
}
