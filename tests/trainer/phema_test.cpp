// EDM2's power-function EMA: the exponent, beta and post-hoc solve against hand computation and against EDM2's own
// training/phema.py (fixture tests/fixtures/trainer/phema_reference.safetensors, tools/make_phema_fixture.py),
// and the reconstruction from snapshot files.
#include "io/safetensors.h"
#include "trainer/ema.h"
#include "trainer/phema.h"
#include "trainer/train_config.h"

#include <gtest/gtest.h>

#include "build_paths.h"
#include "data/temp_dir.h"
#include "error_message.h"

#include <cmath>
#include <string>

namespace {

using onestep::testing::error_of;

onestep::SafetensorsContent phema_reference() {
  return onestep::load_safetensors(std::string(ONESTEP_TEST_FIXTURES) + "/trainer/phema_reference.safetensors");
}

TEST(Phema, ExponentAndStdByHand) {
  // Eq. 123: gamma = 0 gives sqrt(1 / (2^2 * 3)), gamma = 1 gives sqrt(2 / (3^2 * 4)).
  EXPECT_NEAR(onestep::phema_exp_to_std(0.0), std::sqrt(1.0 / 12.0), 1e-15);
  EXPECT_NEAR(onestep::phema_exp_to_std(1.0), std::sqrt(2.0 / 36.0), 1e-15);
  EXPECT_NEAR(onestep::phema_std_to_exp(std::sqrt(2.0 / 36.0)), 1.0, 1e-9);
  // A std whose exponent is 2: beta over the step from 9 to 10 images is (1 - 1/10)^3.
  const double std2 = onestep::phema_exp_to_std(2.0);
  EXPECT_NEAR(onestep::phema_beta(std2, 10, 1), 0.729, 1e-9);
  onestep::EmaRule rule;
  rule.power_std = 0.05;
  EXPECT_EQ(rule.name(), "phema0.05");
  rule.power_std = std2;
  EXPECT_EQ(rule.beta_for(4, 0), 0.0);  // the first step copies the weights (t_next = t_delta)
  EXPECT_NEAR(rule.beta_for(1, 9), 0.729, 1e-9);
  EXPECT_NE(error_of([] { onestep::phema_std_to_exp(0.3); }).find("relative std"), std::string::npos);
}

TEST(Phema, ExponentsMatchEdm2) {
  auto content = phema_reference();
  const torch::Tensor stds = *content.find("std"), exps = *content.find("exp");
  for (int64_t i = 0; i < stds.numel(); ++i)
    EXPECT_NEAR(onestep::phema_std_to_exp(stds[i].item<double>()), exps[i].item<double>(),
                1e-9 * exps[i].item<double>())
        << "std " << stds[i].item<double>();
}

// onestep's EMA rule, applied as Ema::update applies it, against EDM2's PowerFunctionEMA over 12 steps.
TEST(Phema, TrackingMatchesEdm2PowerFunctionEma) {
  auto content = phema_reference();
  const torch::Tensor weights = *content.find("track.weights"), expected = *content.find("track.ema");
  const auto batch = static_cast<int64_t>(content.find("track.batch")->item<double>());
  const torch::Tensor stds = *content.find("track.stds");
  for (int64_t i = 0; i < stds.numel(); ++i) {
    onestep::EmaRule rule;
    rule.power_std = stds[i].item<double>();
    torch::Tensor ema = torch::zeros({weights.size(1)}, torch::kFloat64);
    for (int64_t k = 0; k < weights.size(0); ++k) {
      ema.lerp_(weights[k], 1 - rule.beta_for(batch, k * batch));
      EXPECT_LE((ema - expected[i][k]).abs().max().item<double>(), 1e-12) << "std " << rule.power_std << " step " << k;
    }
  }
}

TEST(Phema, PosthocSolveMatchesEdm2) {
  auto content = phema_reference();
  auto vec = [&](const std::string& name) {
    const torch::Tensor t = content.find(name)->contiguous();
    return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
  };
  const torch::Tensor coefs =
      onestep::phema_solve(vec("solve.in_ofs"), vec("solve.in_std"), vec("solve.out_ofs"), vec("solve.out_std"));
  const torch::Tensor expected = *content.find("solve.coefs");
  ASSERT_EQ(coefs.sizes(), expected.sizes());
  EXPECT_LE((coefs - expected).abs().max().item<double>(), 1e-8 * expected.abs().max().item<double>());
  EXPECT_TRUE(torch::allclose(coefs.sum(0), torch::ones({2}, torch::kFloat64)));
}

onestep::Denoiser phema_model() {
  return onestep::build_model(onestep::Json{{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 8}, {"num_layers", 2}}},
                                            {"precond", onestep::Json::object()}});
}

// Snapshots written as training writes them; reconstructing a tracked profile at the last snapshot returns that
// snapshot's weights (the solve's coefficients are then a unit vector), and another profile is the weighted sum.
TEST(Phema, ReconstructsFromSnapshotFiles) {
  onestep::testing::TempDir dir("phema_snapshots");
  auto model = phema_model();
  std::vector<onestep::Ema> emas;
  for (double std : {0.05, 0.10}) {
    onestep::EmaRule rule;
    rule.power_std = std;
    emas.emplace_back(rule, model);
  }
  const int64_t batch = 8;
  torch::manual_seed(3);
  for (int64_t step = 1; step <= 6; ++step) {
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p));
    }
    for (auto& ema : emas) ema.update(model, batch, (step - 1) * batch);
    if (step % 2 == 0) onestep::write_phema_snapshots(dir.path, emas, step, step * batch);
  }
  const auto snapshots = onestep::list_phema_snapshots(dir.path);
  ASSERT_EQ(snapshots.size(), 6u);
  EXPECT_EQ(snapshots.back().images_seen, 48);
  std::vector<std::string> lines;
  auto same = onestep::reconstruct_phema(snapshots, 0.10, 0, &lines);
  EXPECT_EQ(lines.size(), 6u);
  auto tracked = emas[1].model()->named_parameters();
  for (auto& item : same->named_parameters())
    EXPECT_LE((item.value() - tracked[item.key()]).abs().max().item<double>(), 1e-5) << item.key();

  // 0.075 at step 4 (32 images): the snapshots up to then, weighted by the solve's coefficients.
  auto mid = onestep::reconstruct_phema(snapshots, 0.075, 32);
  const auto coef = onestep::phema_solve({16, 16, 32, 32}, {0.05, 0.10, 0.05, 0.10}, {32}, {0.075});
  torch::Tensor expected;
  for (int64_t i = 0; i < 4; ++i) {
    auto in = onestep::load_model(snapshots[static_cast<size_t>(i)].path);
    auto w = in->parameters().front().to(torch::kFloat64) * coef[i][0];
    expected = expected.defined() ? expected + w : w;
  }
  EXPECT_LE((mid->parameters().front().to(torch::kFloat64) - expected).abs().max().item<double>(), 1e-5);
  EXPECT_NE(error_of([&] { onestep::reconstruct_phema(snapshots, 0.075, 40); }).find("no snapshot was taken at 40"),
            std::string::npos);
}

TEST(Phema, ConfigKeysAreChecked) {
  auto config = [](onestep::Json train) { return onestep::Json{{"train", train}}; };
  auto c = onestep::TrainConfig::from_config(config({{"ema", {0.9999}}, {"ema_phema_std", {0.01, 0.05, 0.1}}}));
  const auto rules = c.ema_rules();
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].name(), "0.9999");
  EXPECT_EQ(rules[2].name(), "phema0.05");
  EXPECT_NE(error_of([&] { onestep::TrainConfig::from_config(config({{"ema_phema_std", {0.5}}})); })
                .find("train.ema_phema_std"),
            std::string::npos);
  EXPECT_NE(error_of([&] { onestep::TrainConfig::from_config(config({{"phema_snapshot_every", 10}})); })
                .find("train.phema_snapshot_every"),
            std::string::npos);
  onestep::testing::TempDir empty("phema_empty");
  EXPECT_NE(error_of([&] { onestep::list_phema_snapshots(empty.path); }).find("no snapshots"), std::string::npos);
}

}  // namespace
