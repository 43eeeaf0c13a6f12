#include "../objectives/test_networks.h"
#include "core/error.h"
#include "core/random.h"
#include "samplers/sampler.h"
#include "samplers/sampling_job.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

using namespace onestep;
using namespace onestep::testing;

namespace {
at::Generator cpu_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }
}  // namespace

TEST(Samplers, HeunAndEulerMatchAnIndependentSolverAndConvergeToTheExactOdeSolution) {
  // Data N(mu, a^2) has the exact denoiser D(x, s) = mu + a^2/(a^2+s^2)(x - mu), and the probability-flow ODE maps
  // x_T to mu + a / sqrt(a^2 + T^2) (x_T - mu) at sigma = 0. Reference values from a float64 Python implementation
  // of EDM algorithm 1 (written independently of this code) for z = 1 and z = -2.
  const double mu = 0.3, a = 0.5;
  auto net = std::make_shared<GaussianNetImpl>(mu, a, 0.5);
  Denoiser model(edm_precond(), net, points_model_config(2));
  const auto z = torch::tensor({{1.0f, -2.0f}});
  SamplerConfig heun;
  heun.kind = SamplerKind::Heun;
  heun.steps = 18;
  auto g = cpu_generator(0);
  auto x = run_sampler(model, heun, z, g);
  EXPECT_EQ(net->num_calls, 35);  // 18 levels: 17 Heun steps (2 evaluations) + the last Euler step to 0
  EXPECT_NEAR(x[0][0].item<double>(), 0.8256460446122926, 1e-4);
  EXPECT_NEAR(x[0][1].item<double>(), -0.7572278663908478, 1e-4);
  heun.steps = 200;
  heun.float64 = true;
  x = run_sampler(model, heun, z, g);
  EXPECT_NEAR(x[0][0].item<double>(), 0.7981152712811139, 5e-4);  // exact ODE solution
  EXPECT_NEAR(x[0][1].item<double>(), -0.7018554327021651, 5e-4);
  SamplerConfig euler;
  euler.kind = SamplerKind::Euler;
  euler.steps = 18;
  x = run_sampler(model, euler, z, g);
  EXPECT_NEAR(x[0][0].item<double>(), 0.7214450685214475, 1e-4);
  EXPECT_NEAR(x[0][1].item<double>(), -0.5476492407024847, 1e-4);
}

TEST(Samplers, OneStepConsistencyCallsTheModelOnceAtSigmaMax) {
  auto net = std::make_shared<ZeroNetImpl>();
  Denoiser model(edm_precond(), net, points_model_config(2));
  SamplerConfig one;  // defaults: consistency, {80}
  auto g = cpu_generator(0);
  const auto z = torch::randn({5, 2});
  const auto x = run_sampler(model, one, z, g);
  ASSERT_EQ(net->calls.size(), 1u);
  EXPECT_NEAR(net->calls[0], 80.0, 1e-3);
  EXPECT_TRUE(torch::allclose(x, 0.25 / (6400.0 + 0.25) * 80.0 * z, 1e-5, 1e-7));  // D = c_skip x
}

TEST(Samplers, TwoStepInjectsNoiseWithStdSqrtSigmaSquaredMinusSigmaMinSquared) {
  auto net = std::make_shared<ZeroNetImpl>();
  PrecondConfig p = edm_precond(0.3);  // a large sigma_min makes the sigma_min^2 term visible
  Denoiser model(p, net, points_model_config(2));
  SamplerConfig two;
  two.sigmas = {80.0, 0.821};
  auto g = cpu_generator(1);
  const auto z = torch::zeros({20000, 2});  // first step returns c_skip * 0 = 0
  run_sampler(model, two, z, g);
  ASSERT_EQ(net->calls.size(), 2u);
  EXPECT_NEAR(net->calls[1], 0.821, 1e-4);
  const double c_in = 1.0 / std::sqrt(0.821 * 0.821 + 0.25);
  const double std_x = (net->last_input / c_in).std().item<double>();
  EXPECT_NEAR(std_x, std::sqrt(0.821 * 0.821 - 0.09), 0.01);
}

// ECT's sampler re-noises with x + t_mid z (ct_training_loop.py:96), iCT's with
// sqrt(t_mid^2 - sigma_min^2) z.
// The rule follows the method the model was trained with unless [sample].renoise names one.
TEST(Samplers, TwoStepRenoisingFollowsTheTrainingMethodOrTheChosenRule) {
  auto renoise_std = [](const std::string& trained_with, Renoise renoise) {
    auto net = std::make_shared<ZeroNetImpl>();
    Denoiser model(edm_precond(0.3), net, points_model_config(2));
    model->set_trained_with(trained_with);
    SamplerConfig two;
    two.sigmas = {80.0, 0.821};
    two.renoise = renoise;
    auto g = cpu_generator(1);
    run_sampler(model, two, torch::zeros({20000, 2}), g);  // first step returns c_skip * 0 = 0
    const double c_in = 1.0 / std::sqrt(0.821 * 0.821 + 0.25);
    return (net->last_input / c_in).std().item<double>();
  };
  const double ict = std::sqrt(0.821 * 0.821 - 0.09), ect = 0.821;  // 0.7637 vs 0.821
  EXPECT_NEAR(renoise_std("ect", Renoise::Auto), ect, 0.01);
  EXPECT_NEAR(renoise_std("ict", Renoise::Auto), ict, 0.01);
  EXPECT_NEAR(renoise_std("ct", Renoise::Auto), ict, 0.01);
  EXPECT_NEAR(renoise_std("", Renoise::Auto), ict, 0.01);  // unknown (a converted file): CM algorithm 1
  EXPECT_NEAR(renoise_std("ect", Renoise::Ict), ict, 0.01);
  EXPECT_NEAR(renoise_std("ict", Renoise::Ect), ect, 0.01);
  EXPECT_EQ(SamplerConfig::from_config(Json{{"sample", {{"renoise", "ect"}}}}).renoise, Renoise::Ect);
  EXPECT_EQ(SamplerConfig{}.renoise, Renoise::Auto);
  EXPECT_THROW(SamplerConfig::from_config(Json{{"sample", {{"renoise", "sqrt"}}}}), Error);
}

TEST(Samplers, DeterministicForASeedAndRestoresTrainingMode) {
  torch::manual_seed(2);
  Denoiser model(edm_precond(), std::make_shared<DropoutNetImpl>(3), points_model_config(3));
  model->train();
  SamplerConfig two;
  two.sigmas = {80.0, 0.821};
  const auto z = torch::randn({6, 3});
  auto g1 = cpu_generator(7), g2 = cpu_generator(7), g3 = cpu_generator(8);
  const auto a = run_sampler(model, two, z, g1);
  EXPECT_TRUE(torch::equal(a, run_sampler(model, two, z, g2)));  // eval mode: no dropout randomness
  EXPECT_FALSE(torch::equal(a, run_sampler(model, two, z, g3)));
  EXPECT_TRUE(model->is_training());
}

TEST(SamplerConfig, ArithmeticIsFloat64ByDefault) {
  // EDM's and ECT's samplers keep x in float64 (edm/generate.py, ct_training_loop.py:86-96).
  EXPECT_TRUE(SamplerConfig{}.float64);
  EXPECT_TRUE(SamplerConfig::from_config(Json::object()).float64);
  EXPECT_FALSE(SamplerConfig::from_config(Json{{"sample", {{"float64", false}}}}).float64);
  // The float64 path: the 18-level Heun sampler of a Gaussian's exact denoiser matches the float64 reference
  // (see the first test) far inside float32's accumulated error of the same path.
  auto net = std::make_shared<GaussianNetImpl>(0.3, 0.5, 0.5);
  Denoiser model(edm_precond(), net, points_model_config(2));
  SamplerConfig heun;
  heun.kind = SamplerKind::Heun;
  auto g = cpu_generator(0);
  const auto x = run_sampler(model, heun, torch::tensor({{1.0f, -2.0f}}), g);
  EXPECT_NEAR(x[0][0].item<double>(), 0.8256460446122926, 2e-6);
  EXPECT_NEAR(x[0][1].item<double>(), -0.7572278663908478, 2e-6);
}

TEST(SamplerConfig, ReadsSectionAndRejectsBadValues) {
  auto c = SamplerConfig::from_config(Json{{"sample", {{"kind", "heun"}, {"steps", 40}}}});
  EXPECT_EQ(c.kind, SamplerKind::Heun);
  EXPECT_EQ(c.steps, 40);
  EXPECT_EQ(c.to_json()["sigmas"], Json::array({80.0}));
  EXPECT_THROW(SamplerConfig::from_config(Json{{"sample", {{"kind", "ddim"}}}}), Error);
  EXPECT_THROW(SamplerConfig::from_config(Json{{"sample", {{"sigmas", {0.8, 80.0}}}}}), Error);
  EXPECT_THROW(SamplerConfig::from_config(Json{{"sample", {{"stepz", 3}}}}), Error);
}

// The sampling job behind `sample`, `eval` and the training-time evaluation: batch k draws its latents, then its class
// labels, then the sampler's fresh noise from one CPU generator, seeded with the job's seed for batch 0 and with
// mix_seed(seed ^ 0xBA7C4, k) for batch k > 0. Replayed here by hand for a class-conditional model, 2 steps (so the
// fresh noise is drawn), 10 samples in batches of 4 (the last one partial).
TEST(SamplingJob, EachBatchDrawsLatentsLabelsAndNoiseFromItsOwnGenerator) {
  auto net = std::make_shared<GaussianNetImpl>(0.3, 0.5, 0.5);
  Denoiser model(edm_precond(), net, Json{{"arch", "mlp"}, {"in_dim", 2}, {"label_dim", 3}});
  SamplerConfig two;
  two.sigmas = {80.0, 0.821};
  SamplingJob job;
  job.n = 10;
  job.batch = 4;
  job.seed = 7;
  std::vector<int64_t> starts;
  std::vector<torch::Tensor> got;
  const SampleRange range = run_sampling_job(model, two, job, nullptr, [&](int64_t start, const torch::Tensor& x) {
    starts.push_back(start);
    got.push_back(x);
  });
  EXPECT_EQ(range.begin, 0);
  EXPECT_EQ(range.end, 10);
  ASSERT_EQ(starts, (std::vector<int64_t>{0, 4, 8}));
  for (int64_t k = 0; k < 3; ++k) {
    SCOPED_TRACE(k);
    const int64_t count = k < 2 ? 4 : 2;
    auto g = cpu_generator(k == 0 ? 7 : mix_seed(7 ^ 0xBA7C4ULL, static_cast<uint64_t>(k)));
    const auto z = at::randn({count, 2}, g);
    const auto labels = at::randint(3, {count}, g);
    const auto expected = run_sampler(model, two, z, g, labels);
    EXPECT_TRUE(torch::equal(got[static_cast<size_t>(k)], expected));
  }
  // A fixed class draws no labels: the fresh noise comes right after the latents.
  job.class_label = 2;
  got.clear();
  run_sampling_job(model, two, job, nullptr, [&](int64_t, const torch::Tensor& x) { got.push_back(x); });
  auto g = cpu_generator(7);
  const auto z = at::randn({4, 2}, g);
  EXPECT_TRUE(torch::equal(got[0], run_sampler(model, two, z, g, torch::full({4}, 2, torch::kLong))));
  // Given latents are used as they are, row for row.
  job.latents = torch::randn({10, 2});
  got.clear();
  run_sampling_job(model, two, job, nullptr, [&](int64_t, const torch::Tensor& x) { got.push_back(x); });
  auto g1 = cpu_generator(mix_seed(7 ^ 0xBA7C4ULL, 1));
  EXPECT_TRUE(torch::equal(got[1], run_sampler(model, two, job.latents.slice(0, 4, 8), g1,
                                               torch::full({4}, 2, torch::kLong))));
}

// The one steps -> sampler rule: 1 or 2 consistency steps from sigma_max (the second at sigma_mid); Heun and Euler
// take the step count as their Karras levels. Anything else is refused with the way to ask for it.
TEST(SamplingJob, StepsSetTheSamplersLevels) {
  SamplerConfig from5;
  from5.sigma_max = 5.0;
  EXPECT_EQ(with_steps(from5, 1, 0.3).sigmas, (std::vector<double>{5.0}));
  EXPECT_EQ(with_steps(from5, 2, 0.3).sigmas, (std::vector<double>{5.0, 0.3}));
  try {
    with_steps(from5, 3, 0.3);
    ADD_FAILURE() << "3 consistency steps accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sigmas"), std::string::npos) << e.what();
  }
  SamplerConfig heun = SamplerConfig::from_config(Json{{"sample", {{"kind", "heun"}}}});
  EXPECT_EQ(with_steps(heun, 40, 0.0).steps, 40);
  EXPECT_THROW(with_steps(heun, 1, 0.0), Error);
  EXPECT_THROW(with_steps(from5, 2, 6.0), Error);  // sigma_mid above sigma_max: not decreasing
}
