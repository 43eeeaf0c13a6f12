#include "core/error.h"
#include "objectives/consistency_training.h"
#include "objectives/ect.h"
#include "objectives/edm.h"
#include "objectives/objective_util.h"
#include "cpu_autocast.h"
#include "gradient_checks.h"
#include "test_networks.h"
#include "trainer/optimizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "error_message.h"
#include "../data/temp_dir.h"

using namespace onestep;
using namespace onestep::testing;

namespace {
at::Generator gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

Denoiser zero_model(int64_t dim, PrecondConfig precond = edm_precond()) {
  return Denoiser(precond, std::make_shared<ZeroNetImpl>(), points_model_config(dim));
}
Denoiser dropout_model(int64_t dim, PrecondConfig precond = edm_precond()) {
  torch::manual_seed(11);
  Denoiser m(precond, std::make_shared<DropoutNetImpl>(dim), points_model_config(dim));
  m->train();
  return m;
}
using onestep::testing::error_of;

std::map<std::string, torch::Tensor> snapshot(Denoiser& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

// One whole training step as the trainer runs it: loss, backward, optimizer step, after_step. Every parameter must
// get a finite, non-zero gradient and move; returns the loss.
double full_step(Objective& objective, Denoiser& model, const Batch& batch, const TrainProgress& progress,
                 uint64_t seed) {
  for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  auto optimizer = make_optimizer(OptimizerKind::RAdam, params, {});
  const auto before = snapshot(model);
  auto g = gen(seed);
  const LossOutput out = objective.compute_loss(model, batch, progress, g);
  EXPECT_TRUE(out.loss.requires_grad());
  out.loss.backward();
  expect_every_parameter_has_a_finite_nonzero_gradient(model);
  optimizer->step(1e-3);
  objective.after_step(model, {progress.step + 1, progress.total_steps, progress.images_seen + batch.x.size(0)});
  for (const auto& p : model->named_parameters())
    EXPECT_FALSE(torch::equal(p.value(), before.at(p.key()))) << p.key() << " did not move";
  return out.loss.item<double>();
}

// E[y | x_i] over the rows of y with weights exp(-|x_i - y_j|^2 / 2 t_i^2), by explicit loops in float64: the
// reference for target_estimate = "batch_posterior".
torch::Tensor posterior_by_hand(const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& t) {
  const int64_t b = y.size(0);
  auto out = torch::zeros_like(y);
  for (int64_t i = 0; i < b; ++i) {
    std::vector<double> logit(static_cast<size_t>(b));
    for (int64_t j = 0; j < b; ++j)
      logit[j] = -(x[i] - y[j]).square().sum().item<double>() / (2 * std::pow(t[i].item<double>(), 2));
    const double top = *std::max_element(logit.begin(), logit.end());
    double total = 0;
    for (int64_t j = 0; j < b; ++j) {
      total += std::exp(logit[j] - top);
      out[i] += std::exp(logit[j] - top) * y[j];
    }
    out[i] /= total;
  }
  return out;
}

// The EDM objective's draws replayed from its generator seed (sigma, then the noise), in float64, with the input x and
// c_skip of sigma_data 0.5 for a zero network (D = c_skip x).
struct EdmDraws {
  torch::Tensor sigma, y, x, c_skip;
};
EdmDraws replay_edm_draws(const Batch& batch, uint64_t seed) {
  const int64_t b = batch.x.size(0);
  auto g = gen(seed);
  EdmDraws d;
  d.sigma = sample_lognormal(b, -1.2, 1.2, g).to(torch::kFloat64);
  const auto n = at::randn(batch.x.sizes(), g, torch::kFloat32).to(torch::kFloat64);
  d.y = batch.x.to(torch::kFloat64);
  d.x = d.y + d.sigma.reshape({b, 1}) * n;
  d.c_skip = (0.25 / (d.sigma.square() + 0.25)).reshape({b, 1});
  return d;
}

Json objective_root(const std::string& method) {
  Json objective{{"method", method}};
  if (method == "ect") objective["stage_length"] = 64;  // images per stage
  return Json{{"objective", objective}};
}
}  // namespace

// Every objective through three whole training steps (loss, backward, optimizer step, after_step), with dropout on,
// so an objective whose teacher disturbs the autograd graph fails here rather than in a user's run.
class EveryObjective : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryObjective, RunsWholeTrainingSteps) {
  auto model = dropout_model(3);
  auto objective = build_objective(objective_root(GetParam()), model);
  torch::manual_seed(3);
  Batch batch{torch::randn({16, 3}), {}};
  for (int64_t step = 0; step < 3; ++step) {
    SCOPED_TRACE(step);
    const double loss = full_step(*objective, model, batch, {step, 100, step * 16}, 10 + step);
    EXPECT_TRUE(std::isfinite(loss));
  }
}

INSTANTIATE_TEST_SUITE_P(Methods, EveryObjective, ::testing::Values("edm", "ct", "ict", "ect"));

TEST(IctObjective, OriginalCtTeacherIsTheEmaWeightsAndTheStepBackpropagates) {
  // N(0) = 2 (s0 = 2): the only pair is (sigma_min, sigma_max). Eval mode: no dropout, so the loss is a closed form
  // of the student's and the teacher's weights.
  auto model = dropout_model(2);
  model->eval();
  auto objective = build_objective(Json{{"objective", {{"method", "ct"}}}}, model);
  objective->after_step(model, {0, 1000, 0});  // first call: teacher = current weights
  const auto teacher_weights = snapshot(model);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters()) p.add_(0.1);
  }
  Batch batch{torch::randn({5, 2}), {}};
  auto g = gen(21);
  const auto out = objective->compute_loss(model, batch, {0, 1000, 0}, g);
  EXPECT_EQ(out.stats["N"], 2);

  torch::manual_seed(11);  // the same architecture, holding the teacher's weights
  Denoiser teacher(edm_precond(), std::make_shared<DropoutNetImpl>(2), points_model_config(2));
  teacher->eval();
  {
    torch::NoGradGuard no_grad;
    for (auto& p : teacher->named_parameters()) p.value().copy_(teacher_weights.at(p.key()));
  }
  auto g2 = gen(21);
  sample_indices({1.0}, 5, g2);
  const auto z = at::randn({5, 2}, g2, torch::kFloat32);
  const auto hi = torch::full({5}, 80.0f), lo = torch::full({5}, 0.002f);
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    const auto diff = model->forward(batch.x + 80.0f * z, hi, Scalings::Edm) -
                      teacher->forward(batch.x + 0.002f * z, lo, Scalings::Edm);
    expected = diff.square().sum(1).mean();  // squared L2, lambda = 1
  }
  EXPECT_NEAR(out.loss.item<double>(), expected.item<double>(), 1e-5 * expected.item<double>());
  // The backward pass after the teacher's evaluation (which swaps weights in place) must work.
  EXPECT_NO_THROW(out.loss.backward());
  EXPECT_GT(model->named_parameters()["model.w1"].grad().abs().sum().item<double>(), 0.0);
}


TEST(Metrics, PseudoHuberIsOverTheWholeSampleNotElementwise) {
  // One sample, diff (0.3, 0.4): whole-sample norm 0.5 -> sqrt(0.25 + 0.01) - 0.1 = 0.40990195135927845.
  // Element-wise would give (sqrt(0.09+0.01)-0.1) + (sqrt(0.16+0.01)-0.1) = 0.5285383... : must NOT be that.
  const auto diff = torch::tensor({0.3, 0.4}, torch::kFloat64).reshape({1, 2});
  const double got = pseudo_huber_per_sample(diff, 0.1).item<double>();
  EXPECT_NEAR(got, 0.40990195135927845, 1e-14);
  EXPECT_GT(std::abs(got - 0.5285383168502218), 0.1);
  EXPECT_NEAR(squared_l2_per_sample(diff).item<double>(), 0.25, 1e-15);
  // Image-shaped: the norm spans C*H*W.
  const auto img = torch::full({2, 3, 4, 4}, 0.5, torch::kFloat64);  // ||.||^2 = 48 * 0.25 = 12
  const auto d = pseudo_huber_per_sample(img, 1.0);
  EXPECT_NEAR(d[1].item<double>(), std::sqrt(13.0) - 1.0, 1e-14);
}

TEST(Metrics, DefaultHuberConstantForCifarAndImageNet64) {
  EXPECT_NEAR(default_huber_c({3, 32, 32}), 0.0299298379547902, 1e-15);
  EXPECT_NEAR(default_huber_c({3, 64, 64}), 0.0598596759095804, 1e-15);
}

TEST(EdmObjective, LossWeightAndLossMatchTheFormula) {
  const auto w = edm_loss_weight(torch::tensor({0.5, 2.0}, torch::kFloat64), 0.5);
  EXPECT_NEAR(w[0].item<double>(), 8.0, 1e-14);
  EXPECT_NEAR(w[1].item<double>(), 4.25, 1e-14);

  // With F = 0, D = c_skip x, so the loss is checkable with the same random draws.
  auto model = zero_model(2);
  EdmObjective objective({});
  Batch batch{torch::tensor({{0.2f, -0.4f}, {0.9f, 0.1f}, {-1.0f, 0.5f}}), {}};
  auto g = gen(5);
  const auto out = objective.compute_loss(model, batch, {}, g);
  const EdmDraws d = replay_edm_draws(batch, 5);
  const double expected = (edm_loss_weight(d.sigma, 0.5) * (d.c_skip * d.x - d.y).square().sum(1)).mean().item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-4 * expected);
  EXPECT_TRUE(out.loss.requires_grad());
}

// target_estimate = "batch_posterior": the same loss with y replaced by its posterior mean over the batch.
TEST(EdmObjective, BatchPosteriorTargetReplacesTheCleanSample) {
  auto model = zero_model(2);
  EdmObjectiveConfig config;
  config.target_estimate = TargetEstimate::BatchPosterior;
  EdmObjective objective(config);
  Batch batch{torch::tensor({{0.2f, -0.4f}, {0.9f, 0.1f}, {-1.0f, 0.5f}, {0.25f, -0.3f}}), {}};
  auto g = gen(5);
  const auto out = objective.compute_loss(model, batch, {}, g);
  const EdmDraws d = replay_edm_draws(batch, 5);
  const auto target = posterior_by_hand(d.x, d.y, d.sigma);
  const double expected =
      (edm_loss_weight(d.sigma, 0.5) * (d.c_skip * d.x - target).square().sum(1)).mean().item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-4 * expected);
  const double paper = (edm_loss_weight(d.sigma, 0.5) * (d.c_skip * d.x - d.y).square().sum(1)).mean().item<double>();
  EXPECT_GT(std::abs(expected - paper), 1e-3 * paper);  // the draws give a posterior other than y
  EXPECT_EQ(build_objective(Json{{"objective", {{"method", "edm"}, {"target_estimate", "batch_posterior"}}}}, model)
                ->to_json()["target_estimate"],
            "batch_posterior");
}

TEST(SharedDropout, RewindGivesTheStudentsMaskToTheTeacher) {
  auto model = dropout_model(4);
  const auto x = torch::randn({8, 4});
  const auto s = torch::full({8}, 1.0f);
  SharedDropoutState state(torch::Device(torch::kCPU));
  const auto a = model->forward(x, s, Scalings::Edm);
  state.rewind();
  const auto b = model->forward(x, s, Scalings::Edm);
  state.restore();
  EXPECT_TRUE(torch::equal(a, b));
  const auto c = model->forward(x, s, Scalings::Edm);  // a fresh mask once restored
  EXPECT_FALSE(torch::equal(a, c));
}

TEST(IctObjective, StudentAndTeacherShareTheDropoutMask) {
  // Two adjacent levels 1 and 1 + 2^-23 (one float32 ulp): student and teacher inputs nearly equal, so with a shared
  // mask the squared-L2 loss is ~0; with independent dropout masks it would be O(1).
  auto model = dropout_model(4);
  auto c = ConsistencyTrainingConfig::defaults_for(ObjectiveMethod::Ict);
  c.sigma_min = 1.0;
  c.sigma_max = 1.0 + std::ldexp(1.0, -23);
  c.s0 = 1;
  c.s1 = 1;
  c.metric = CtMetric::L2;
  c.weighting = CtWeighting::Uniform;
  ConsistencyTrainingObjective objective(c, {4});
  Batch batch{torch::randn({16, 4}), {}};
  auto g = gen(1);
  const auto out = objective.compute_loss(model, batch, {0, 10, 0}, g);
  EXPECT_EQ(out.stats["N"], 2);
  EXPECT_LT(out.loss.item<double>(), 1e-8);
}

TEST(IctObjective, LambdaIsInverseLevelGapAndLossIsPseudoHuber) {
  auto model = zero_model(3);
  auto c = ConsistencyTrainingConfig::defaults_for(ObjectiveMethod::Ict);
  c.s0 = 1;
  c.s1 = 1;  // N = 2: the only pair is (sigma_min, sigma_max)
  ConsistencyTrainingObjective objective(c, {3});
  EXPECT_NEAR(objective.huber_c(), 0.00054 * std::sqrt(3.0), 1e-15);
  Batch batch{torch::tensor({{0.1f, 0.2f, 0.3f}}), {}};
  auto g = gen(2);
  const auto out = objective.compute_loss(model, batch, {0, 10, 0}, g);
  EXPECT_NEAR(out.stats["mean_weight"].get<double>(), 1.0 / (80.0 - 0.002), 1e-7);
  EXPECT_NEAR(out.stats["mean_dt"].get<double>(), 80.0 - 0.002, 1e-4);
  // Recompute: index draw (one multinomial), then noise.
  auto g2 = gen(2);
  sample_indices({1.0}, 1, g2);
  const auto z = at::randn({1, 3}, g2, torch::kFloat32).to(torch::kFloat64);
  const auto y = batch.x.to(torch::kFloat64);
  auto cs = [](double s) { return 0.25 / (s * s + 0.25); };
  const auto diff = cs(80.0) * (y + 80.0 * z) - cs(0.002) * (y + 0.002 * z);
  const double hc = objective.huber_c();
  const double expected = (std::sqrt(diff.square().sum().item<double>() + hc * hc) - hc) / (80.0 - 0.002);
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-5 * expected);
}

TEST(IctObjective, CurriculumStatsAndEmaTeacherOfOriginalCt) {
  auto model = dropout_model(2);
  model->eval();
  Json root{{"objective", {{"method", "ct"}}}};
  auto objective = build_objective(root, model);
  EXPECT_EQ(objective->to_json()["metric"], "l2");
  EXPECT_EQ(objective->to_json()["teacher"], "ema");
  EXPECT_EQ(objective->to_json()["s1"], 150);
  Batch batch{torch::randn({4, 2}), {}};
  auto g = gen(3);
  EXPECT_EQ(objective->compute_loss(model, batch, {500, 1000, 0}, g).stats["N"], 107);
  // after_step: teacher <- mu teacher + (1 - mu) theta with mu = exp(s0 ln mu0 / N(k)).
  objective->after_step(model, {500, 1000, 0});  // first call copies the weights
  const auto before = model->named_parameters()["model.w1"].detach().clone();
  { torch::NoGradGuard ng; for (auto& p : model->parameters()) p.add_(1.0); }
  objective->after_step(model, {500, 1000, 0});
  const double mu = ct_teacher_decay(107, 2, 0.9);
  auto state = objective->state_tensors();
  ASSERT_EQ(state[0].first, "teacher.model.w1");
  EXPECT_TRUE(torch::allclose(state[0].second, before + (1 - mu), 1e-6, 1e-6));
  // The teacher evaluation leaves the student's weights in place.
  auto g2 = gen(4);
  objective->compute_loss(model, batch, {500, 1000, 0}, g2);
  EXPECT_TRUE(torch::equal(model->named_parameters()["model.w1"], before + 1.0));
}

TEST(EctObjective, RZeroTargetsTheCleanImageWithWeightOneOverT) {
  // Paper exponent at stage 0: q^0 = 1 -> r = max(0, t (1 - n)) = 0 for every t (plain diffusion, clean target).
  auto model = zero_model(2);
  EctObjectiveConfig c;
  c.mapping.paper_exponent = true;
  EctObjective objective(c);
  Batch batch{torch::tensor({{0.5f, -0.5f}, {0.1f, 0.7f}}), {}};
  auto g = gen(9);
  const auto out = objective.compute_loss(model, batch, {0, 10, 0}, g);
  EXPECT_EQ(out.stats["stage"], 0);
  EXPECT_EQ(out.stats["frac_r_zero"].get<double>(), 1.0);
  auto g2 = gen(9);
  const auto t = sample_lognormal(2, -1.1, 2.0, g2).to(torch::kFloat64);
  const auto eps = at::randn({2, 2}, g2, torch::kFloat32).to(torch::kFloat64);
  const auto y = batch.x.to(torch::kFloat64);
  const auto c_skip = (0.25 / (t.square() + 0.25)).reshape({2, 1});
  const auto dist = (c_skip * (y + t.reshape({2, 1}) * eps) - y).square().sum(1).sqrt();
  const double expected = (dist / t).mean().item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-4 * expected);
}

TEST(EctObjective, StageFollowsImagesSeenAndTeacherSharesTheMask) {
  // const mapping, q = 16, stage_length 100 images: after 250 images stage 2, r = t (1 - 1/16^3).
  auto model = dropout_model(3);
  Json root{{"objective", {{"method", "ect"}, {"mapping", "const"}, {"q", 16.0}, {"stage_length", 100}}}};
  auto objective = build_objective(root, model);
  Batch batch{torch::randn({8, 3}), {}};
  auto g = gen(1);
  const auto out = objective->compute_loss(model, batch, {0, 10, 250}, g);
  EXPECT_EQ(out.stats["stage"], 2);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  // stage 2, q^3 = 4096: dt = t / 4096, weight = 4096 / t
  auto g2 = gen(1);
  const auto t = sample_lognormal(8, -1.1, 2.0, g2);
  const double expected = (4096.0 / t).mean().item<double>();
  EXPECT_NEAR(out.stats["mean_weight"].get<double>(), expected, 1e-3 * expected);
}

// weighting = "inverse_dt_squared" (not in the paper; methods.h): w = 1 / (t - r)^2, the same pairs and distances.
TEST(EctObjective, InverseDtSquaredWeightingSquaresTheWeight) {
  auto model = dropout_model(3);
  auto build = [&](const std::string& weighting) {
    return build_objective(Json{{"objective", {{"method", "ect"}, {"mapping", "const"}, {"q", 16.0},
                                               {"stage_length", 100}, {"huber_c", 1.0}, {"weighting", weighting}}}},
                           model);
  };
  auto squared = build("inverse_dt_squared");
  EXPECT_EQ(squared->to_json()["weighting"], "inverse_dt_squared");
  EXPECT_EQ(build("inverse_dt")->to_json()["weighting"], "inverse_dt");
  Batch batch{torch::randn({8, 3}), {}};
  auto g = gen(1);
  const auto out = squared->compute_loss(model, batch, {0, 10, 250}, g);
  // stage 2, q^3 = 4096: dt = t / 4096, weight = (4096 / t)^2
  auto g2 = gen(1);
  const auto t = sample_lognormal(8, -1.1, 2.0, g2).to(torch::kFloat64);
  const double expected = (4096.0 / t).square().mean().item<double>();
  EXPECT_NEAR(out.stats["mean_weight"].get<double>(), expected, 1e-3 * expected);
  EXPECT_THAT(error_of([&] { build("uniform"); }), ::testing::HasSubstr("weighting"));
}

TEST(ObjectiveFactory, DefaultsAndBadKeys) {
  auto model = zero_model(2);
  auto ict = build_objective(Json{{"objective", {{"method", "ict"}}}}, model);
  const auto j = ict->to_json();
  EXPECT_EQ(j["s0"], 10);
  EXPECT_EQ(j["s1"], 1280);
  EXPECT_EQ(j["index"], "lognormal");
  EXPECT_EQ(j["weighting"], "inverse_dt");
  EXPECT_EQ(j["teacher"], "current");
  EXPECT_NEAR(j["huber_c"].get<double>(), 0.00054 * std::sqrt(2.0), 1e-15);
  EXPECT_EQ(build_objective(Json{{"objective", {{"method", "ect"}}}}, model)->to_json()["stage_exponent"],
            "stage_plus_one");
  EXPECT_EQ(build_objective(Json{{"objective", {{"method", "edm"}}}}, model)->name(), "edm");
  EXPECT_THAT(error_of([&] { build_objective(Json{{"objective", {{"method", "edm"}, {"q", 2.0}}}}, model); }),
              ::testing::HasSubstr("q"));
  EXPECT_THAT(error_of([&] { build_objective(Json{{"objective", {{"method", "ict"}, {"metric", "lpips"}}}}, model); }),
              ::testing::HasSubstr("metric"));
  EXPECT_THAT(error_of([&] { build_objective(Json{{"objective", {{"method", "foo"}}}}, model); }),
              ::testing::HasSubstr("method"));
}

TEST(ObjectiveFactory, EachMethodRefusesTheKeysItDoesNotRead) {
  auto model = zero_model(2);
  auto error_for = [&](Json objective) {
    return error_of([&] { build_objective(Json{{"objective", objective}}, model); });
  };
  // Original CT fixes iCT's choices: another value is refused, pointing to method = "ict".
  EXPECT_THAT(error_for({{"method", "ct"}, {"curriculum", "doubling"}}),
              ::testing::AllOf(::testing::HasSubstr("objective.curriculum"), ::testing::HasSubstr("method = \"ict\"")));
  EXPECT_THAT(error_for({{"method", "ct"}, {"index", "lognormal"}}), ::testing::HasSubstr("objective.index"));
  EXPECT_THAT(error_for({{"method", "ct"}, {"metric", "pseudo_huber"}}), ::testing::HasSubstr("objective.metric"));
  EXPECT_THAT(error_for({{"method", "ct"}, {"teacher", "current"}}), ::testing::HasSubstr("objective.teacher"));
  // ... and the keys of those choices are not read.
  EXPECT_THAT(error_for({{"method", "ct"}, {"p_mean", -1.1}}),
              ::testing::AllOf(::testing::HasSubstr("objective.p_mean is not read"), ::testing::HasSubstr("uniform")));
  EXPECT_THAT(error_for({{"method", "ct"}, {"huber_c", 0.03}}), ::testing::HasSubstr("objective.huber_c is not read"));
  EXPECT_THAT(error_for({{"method", "ict"}, {"mu0", 0.9}}), ::testing::HasSubstr("objective.mu0 is not read"));
  EXPECT_THAT(error_for({{"method", "ict"}, {"metric", "l2"}, {"huber_c", 0.1}}),
              ::testing::HasSubstr("objective.huber_c is not read"));
  EXPECT_THAT(error_for({{"method", "ict"}, {"index", "uniform"}, {"p_std", 2.0}}),
              ::testing::HasSubstr("objective.p_std is not read"));
  EXPECT_THAT(error_for({{"method", "ect"}, {"mapping", "const"}, {"k", 8.0}}),
              ::testing::HasSubstr("objective.k is not read"));
  EXPECT_THAT(error_for({{"method", "edm"}, {"s0", 10}}),
              ::testing::AllOf(::testing::HasSubstr("objective.s0 is not read by method \"edm\""),
                               ::testing::HasSubstr("ct, ict")));
  EXPECT_THAT(error_for({{"method", "ct"}, {"target_estimate", "batch_posterior"}}),
              ::testing::HasSubstr("objective.target_estimate"));
  EXPECT_THAT(error_for({{"method", "ect"}, {"target_estimate", "ideal"}}),
              ::testing::HasSubstr("target_estimate"));
  EXPECT_THAT(error_for({{"method", "ect"}, {"teacher", "ema"}}),
              ::testing::HasSubstr("objective.teacher is not read"));
  // What the methods do read is accepted: CT's own values spelled out, iCT switched to CT's choices with mu0.
  EXPECT_NO_THROW(
      build_objective(Json{{"objective", {{"method", "ct"}, {"curriculum", "sqrt"}, {"mu0", 0.95}}}}, model));
  EXPECT_NO_THROW(build_objective(Json{{"objective", {{"method", "ict"}, {"teacher", "ema"}, {"mu0", 0.95}}}}, model));
}

TEST(ObjectiveFactory, EffectiveConfigurationReadsBack) {
  // The run directory's config.toml holds to_json(); --resume builds the objective from it again.
  auto model = zero_model(2);
  for (const Json& objective :
       {Json{{"method", "edm"}}, Json{{"method", "ct"}}, Json{{"method", "ict"}},
        Json{{"method", "ict"}, {"index", "uniform"}, {"metric", "l2"}, {"teacher", "ema"}}, Json{{"method", "ect"}},
        Json{{"method", "ect"}, {"mapping", "const"}}, Json{{"method", "ect"}, {"target_estimate", "batch_posterior"}},
        Json{{"method", "ict"}, {"target_estimate", "batch_posterior"}}}) {
    SCOPED_TRACE(objective.dump());
    const Json effective = build_objective(Json{{"objective", objective}}, model)->to_json();
    Json again;
    ASSERT_NO_THROW(again = build_objective(Json{{"objective", effective}}, model)->to_json());
    EXPECT_EQ(again, effective);
  }
  const Json ct = build_objective(Json{{"objective", {{"method", "ct"}}}}, model)->to_json();
  EXPECT_FALSE(ct.contains("p_mean"));
  EXPECT_FALSE(ct.contains("huber_c"));
  EXPECT_EQ(ct["index"], "uniform");
  EXPECT_FALSE(build_objective(Json{{"objective", {{"method", "ict"}}}}, model)->to_json().contains("mu0"));
}

TEST(IctObjective, OriginalCtTeacherDecayOfTheStepTakenAsPaperOrReferenceCode) {
  // K = 1000, s0 = 2, s1 = 150: N(0) = 2, N(1) = ceil(sqrt(0.001 (151^2 - 4) + 4) - 1) + 1 = ceil(4.18) + 1 = 6.
  EXPECT_EQ(ct_num_levels(1, 1000, 2, 150), 6);
  auto model = dropout_model(2);
  for (const std::string decay : {"paper", "code"}) {
    SCOPED_TRACE(decay);
    auto objective = build_objective(Json{{"objective", {{"method", "ct"}, {"teacher_decay", decay}}}}, model);
    objective->after_step(model, {1, 1000, 16});  // the first call copies the weights
    const auto before = model->named_parameters()["model.w1"].detach().clone();
    {
      torch::NoGradGuard ng;
      for (auto& p : model->parameters()) p.add_(1.0);
    }
    // After step k = 0 (the trainer passes step = 1): mu(0) uses N(0) = 2, not N(1) = 6.
    objective->after_step(model, {1, 1000, 16});
    const double mu = decay == "paper" ? std::exp(2 * std::log(0.9) / 2) : std::exp(2 * std::log(0.9) / 1);
    EXPECT_NEAR(mu, decay == "paper" ? 0.9 : 0.81, 1e-12);
    EXPECT_TRUE(torch::allclose(objective->state_tensors()[0].second, before + (1 - mu), 1e-6, 1e-6));
    {
      torch::NoGradGuard ng;
      for (auto& p : model->parameters()) p.sub_(1.0);
    }
  }
}

// target_estimate = "batch_posterior" (objective_util.h): E[y | x_t] over the batch, w_j ~ exp(-|x_t - y_j|^2 / 2t^2).
// Row 0: logits -0.02, -0.32, -3.92 -> w = 0.567840, 0.420666, 0.011494 -> D = 0.420666 + 3 * 0.011494 = 0.455149.
// Row 1 (t = 0.5): logits -4, -2, -10 -> w = 0.119168, 0.880537, 0.000295 -> D = 0.881423. Row 2 (t = 0.01): its
// own y. Classes {0, 1, 0}: row 0 weighs rows 0 and 2 only (0.980160, 0.019840 -> 0.059521), row 1 only itself.
TEST(BatchPosterior, MeanOfTheBatchWeightedByTheGaussianLikelihoodOfXt) {
  const auto y = torch::tensor({{0.0f, 0.0f}, {1.0f, 0.0f}, {3.0f, 0.0f}});
  const auto x = torch::tensor({{0.2f, 0.0f}, {1.0f, 1.0f}, {3.0f, 0.001f}});
  const auto t = torch::tensor({1.0f, 0.5f, 0.01f});
  const auto d = batch_posterior_mean(y, x, t, torch::Tensor());
  EXPECT_EQ(d.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(d[0][0].item<double>(), 0.455149, 1e-6);
  EXPECT_NEAR(d[1][0].item<double>(), 0.881423, 1e-6);
  EXPECT_NEAR(d[2][0].item<double>(), 3.0, 1e-6);
  EXPECT_EQ(d.select(1, 1).abs().max().item<double>(), 0.0);
  const auto by_class = batch_posterior_mean(y, x, t, torch::tensor({0, 1, 0}, torch::kInt64));
  EXPECT_NEAR(by_class[0][0].item<double>(), 0.059521, 1e-6);
  EXPECT_NEAR(by_class[1][0].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(by_class[2][0].item<double>(), 3.0, 1e-6);
}

TEST(BatchPosterior, EulerStepWithTheOwnSampleIsThePapersTargetInput) {
  torch::manual_seed(3);
  const auto y = torch::randn({5, 1, 2, 2});
  const auto n = torch::randn({5, 1, 2, 2});
  const auto t = torch::tensor({0.1f, 0.5f, 2.0f, 10.0f, 80.0f});
  const auto r = t * 0.9;
  const auto expected = y + r.reshape({5, 1, 1, 1}) * n;
  EXPECT_TRUE(torch::allclose(euler_step_to(y + t.reshape({5, 1, 1, 1}) * n, y, t, r), expected, 1e-5, 1e-5));
  // r = 0 lands on the denoiser's estimate; r = t stays at x_t.
  const auto x = y + t.reshape({5, 1, 1, 1}) * n;
  EXPECT_TRUE(torch::allclose(euler_step_to(x, y, t, torch::zeros_like(t)), y));
  EXPECT_TRUE(torch::allclose(euler_step_to(x, y, t, t), x));
}

// ECT at stage 0 with the paper's exponent has r = 0 everywhere: the target is the estimate of the clean sample, so
// with a zero network the loss is mean_i |c_skip x_i - D_i| / t_i with D the batch posterior of x_i = y_i + t_i eps_i.
TEST(EctObjective, BatchPosteriorTargetIsThePosteriorMeanOverTheBatch) {
  auto model = zero_model(2);
  EctObjectiveConfig c;
  c.mapping.paper_exponent = true;
  c.target_estimate = TargetEstimate::BatchPosterior;
  EctObjective objective(c);
  Batch batch{torch::tensor({{0.5f, -0.5f}, {0.1f, 0.7f}, {-0.3f, 0.2f}}), {}};
  auto g = gen(9);
  const auto out = objective.compute_loss(model, batch, {0, 10, 0}, g);
  auto g2 = gen(9);
  const auto t = sample_lognormal(3, -1.1, 2.0, g2).to(torch::kFloat64);
  const auto eps = at::randn({3, 2}, g2, torch::kFloat32).to(torch::kFloat64);
  const auto y = batch.x.to(torch::kFloat64);
  const auto x = y + t.reshape({3, 1}) * eps;
  const auto c_skip = (0.25 / (t.square() + 0.25)).reshape({3, 1});
  const double expected =
      ((c_skip * x - posterior_by_hand(x, y, t)).square().sum(1).sqrt() / t).mean().item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-4 * expected);
  // The single-sample target (the paper's) gives a different loss from the same draws.
  c.target_estimate = TargetEstimate::SingleSample;
  EctObjective paper(c);
  auto g3 = gen(9);
  EXPECT_GT(std::abs(paper.compute_loss(model, batch, {0, 10, 0}, g3).loss.item<double>() - expected), 1e-3 * expected);
}

// target_estimate = "teacher": D = the frozen teacher's denoiser at x_t, x_r = D + (r / t) (x_t - D), and the rows with
// r = 0 target D itself. Written out in float64 with a zero student (f(x, t) = c_skip(t) x) and a random MLP teacher
// loaded from a file, at ECT's stage 0, where rows with t below ~1.9 have r = 0 and the others r > 0.
TEST(EctObjective, TeacherTargetIsTheEulerStepOfTheTeachersOde) {
  onestep::testing::TempDir dir("ect_teacher");
  torch::manual_seed(21);
  Denoiser teacher_net = build_model(Json{{"model", points_model_config(2)}});
  const auto path = dir / "teacher.safetensors";
  save_model(path, teacher_net);
  auto model = zero_model(2);
  EctObjectiveConfig c;
  c.target_estimate = TargetEstimate::Teacher;
  c.teacher = path.string();
  EctObjective objective(c);
  torch::manual_seed(22);
  const Batch batch{torch::randn({8, 2}) * 0.5, {}};
  auto g = gen(31);
  const auto out = objective.compute_loss(model, batch, {0, 10, 0}, g);

  auto g2 = gen(31);
  const auto t32 = sample_lognormal(8, -1.1, 2.0, g2);
  const auto eps = at::randn({8, 2}, g2, torch::kFloat32).to(torch::kFloat64);
  const auto t = t32.to(torch::kFloat64);
  const auto r = c.mapping.r(t32, 0).to(torch::kFloat64);
  ASSERT_GT((r == 0).sum().item<int64_t>(), 0);
  ASSERT_GT((r > 0).sum().item<int64_t>(), 0);
  const auto x = batch.x.to(torch::kFloat64) + t.reshape({8, 1}) * eps;
  torch::Tensor d;
  {
    torch::NoGradGuard no_grad;
    Denoiser loaded = load_model(path);
    d = loaded->forward(x.to(torch::kFloat32), t32, Scalings::Edm, torch::Tensor()).to(torch::kFloat64);
  }
  const auto c_skip = [](const torch::Tensor& s) { return (0.25 / (s.square() + 0.25)).reshape({-1, 1}); };
  const auto x_r = d + (r / t).reshape({8, 1}) * (x - d);
  const auto target = torch::where((r > 0).reshape({8, 1}), c_skip(r) * x_r, d);
  const double expected = ((c_skip(t) * x - target).square().sum(1).sqrt() / (t - r)).mean().item<double>();
  EXPECT_NEAR(out.loss.item<double>(), expected, 1e-4 * expected);
  // The same draws with the paper's target y + r eps give another loss.
  EctObjective paper(EctObjectiveConfig{});
  auto g3 = gen(31);
  EXPECT_GT(std::abs(paper.compute_loss(model, batch, {0, 10, 0}, g3).loss.item<double>() - expected), 1e-3 * expected);
  EXPECT_EQ(objective.to_json()["teacher"], path.string());

  // Read from the configuration: needs the file, refused where no method has a teacher, and checked against the data.
  const auto error_for = [&](const Json& objective_section, Denoiser& m) {
    return onestep::testing::error_of([&] { build_objective(Json{{"objective", objective_section}}, m); });
  };
  EXPECT_THAT(error_for({{"method", "ect"}, {"target_estimate", "teacher"}}, model), ::testing::HasSubstr("needs objective.teacher"));
  EXPECT_THAT(error_for({{"method", "ect"}, {"teacher", path.string()}}, model),
              ::testing::HasSubstr("objective.teacher is not read by method \"ect\" unless target_estimate = \"teacher\""));
  for (const std::string method : {"edm", "ict"})
    EXPECT_THAT(error_for({{"method", method}, {"target_estimate", "teacher"}}, model),
                ::testing::HasSubstr("target_estimate = \"teacher\" is read only by method \"ect\""));
  auto three = zero_model(3);
  EXPECT_THAT(error_for({{"method", "ect"}, {"target_estimate", "teacher"}, {"teacher", path.string()}}, three),
              ::testing::HasSubstr("the teacher's samples or labels differ"));
  EXPECT_NO_THROW(build_objective(
      Json{{"objective", {{"method", "ect"}, {"target_estimate", "teacher"}, {"teacher", path.string()}}}}, model));
}

// Rows far apart (the posterior is each row's own y) give the papers' loss for iCT and ECT; close rows do not.
TEST(BatchPosterior, RowsFarApartGiveThePapersLoss) {
  auto model = dropout_model(2);
  for (const std::string method : {"ict", "ect"}) {
    SCOPED_TRACE(method);
    auto loss_of = [&](const std::string& estimate, const torch::Tensor& x) {
      Json objective = objective_root(method)["objective"];
      objective["target_estimate"] = estimate;
      objective["huber_c"] = 1.0;
      auto built = build_objective(Json{{"objective", objective}}, model);
      auto g = gen(4);
      torch::manual_seed(5);  // the dropout masks
      return built->compute_loss(model, Batch{x, {}}, {500, 1000, 192}, g).loss.item<double>();  // ECT stage 3
    };
    const auto far = torch::tensor({{0.0f, 0.0f}, {1e3f, 0.0f}, {0.0f, -1e3f}, {-1e3f, 1e3f}});
    const double paper = loss_of("single_sample", far);
    EXPECT_NEAR(loss_of("batch_posterior", far), paper, 1e-3 * paper);
    const auto near = torch::tensor({{0.0f, 0.0f}, {0.1f, 0.0f}, {0.0f, -0.1f}, {-0.1f, 0.1f}});
    const double near_paper = loss_of("single_sample", near);
    EXPECT_GT(std::abs(loss_of("batch_posterior", near) - near_paper), 1e-2 * near_paper);
  }
}

// clean_estimate: the rows themselves for the papers' target; the batch posterior otherwise, restricted to the same
// class only when the model is class-conditional (a one-hot encoding given), over all rows when it is not.
TEST(BatchPosterior, CleanEstimateUsesClassesOnlyForConditionalModels) {
  const auto y = torch::tensor({{0.0f, 0.0f}, {1.0f, 0.0f}, {3.0f, 0.0f}});
  const auto x = torch::tensor({{0.2f, 0.0f}, {1.0f, 1.0f}, {3.0f, 0.001f}});
  const auto t = torch::tensor({1.0f, 0.5f, 0.01f});
  const Batch batch{y, torch::tensor({0, 1, 0}, torch::kInt64)};
  EXPECT_TRUE(torch::equal(clean_estimate(TargetEstimate::SingleSample, batch, x, t, torch::Tensor()), y));
  const auto one_hot = torch::one_hot(batch.labels, 2).to(torch::kFloat32);
  const auto posterior = TargetEstimate::BatchPosterior;
  EXPECT_NEAR(clean_estimate(posterior, batch, x, t, torch::Tensor())[0][0].item<double>(), 0.455149, 1e-6);
  EXPECT_NEAR(clean_estimate(posterior, batch, x, t, one_hot)[0][0].item<double>(), 0.059521, 1e-6);
}

// The batch posterior is a softmax-weighted mean of the rows: under bf16 autocast its matrix product would round the
// rows to 8 bits of mantissa. It runs in float32 whatever the autocast state.
TEST(BatchPosterior, IsFloat32UnderBf16Autocast) {
  torch::manual_seed(5);
  const auto y = torch::randn({6, 3});
  const auto x = y + 0.5 * torch::randn({6, 3});
  const auto t = torch::full({6}, 0.7f);
  const auto expected = batch_posterior_mean(y, x, t, torch::Tensor());
  CpuBf16Autocast autocast;
  const auto got = batch_posterior_mean(y, x, t, torch::Tensor());
  EXPECT_EQ(got.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(got, expected)) << (got - expected).abs().max().item<double>();
}

// objective.posterior_bank (objective_util.h, PosteriorBank): the reference rows of the batch posterior beyond the
// batch. The numbers are those of MeanOfTheBatchWeightedByTheGaussianLikelihoodOfXt's row 0 with two of its rows moved
// into the bank: the same three points, so the same weights (0.567840, 0.420666, 0.011494 -> 0.455149; classes
// {0 | 1, 0}: 0.980160, 0.019840 -> 0.059521).
TEST(PosteriorBank, BankRowsAreReferencePointsBesideTheBatch) {
  const auto y = torch::tensor({{0.0f, 0.0f}});
  const auto x = torch::tensor({{0.2f, 0.0f}});
  const auto t = torch::tensor({1.0f});
  const auto bank = torch::tensor({{1.0f, 0.0f}, {3.0f, 0.0f}});
  EXPECT_NEAR(batch_posterior_mean(y, x, t, torch::Tensor(), bank)[0][0].item<double>(), 0.455149, 1e-6);
  const auto d = batch_posterior_mean(y, x, t, torch::tensor({0}, torch::kInt64), bank, torch::tensor({1, 0}, torch::kInt64));
  EXPECT_NEAR(d[0][0].item<double>(), 0.059521, 1e-6);
  // Without the bank the row is alone: its own y.
  EXPECT_NEAR(batch_posterior_mean(y, x, t, torch::Tensor())[0][0].item<double>(), 0.0, 1e-7);
}

// The banked posterior (logits of batch and bank computed apart, the bank's squared norms as it keeps them) against
// the posterior written out directly in float64: w_ij = softmax_j(-|x_i - r_j|^2 / (2 t_i^2)) over the batch's rows and
// the bank's, of the same class, D_i = sum_j w_ij r_j.
TEST(PosteriorBank, BankedPosteriorEqualsTheDirectFormula) {
  torch::manual_seed(5);
  const int64_t b = 4, m = 7;
  const auto y = torch::randn({b, 1, 2, 3});
  const auto x = y + torch::randn({b, 1, 2, 3}) * 1.5;
  const auto t = torch::tensor({0.5f, 1.0f, 2.0f, 4.0f});
  const auto labels = torch::tensor({0, 1, 0, 1}, torch::kInt64);
  PosteriorBank bank(m);
  for (int i = 0; i < 3; ++i)  // 9 rows through a ring of 7: the bank wraps
    bank.push(Batch{torch::randn({3, 1, 2, 3}), torch::tensor({i % 2, 1, 0}, torch::kInt64)});
  ASSERT_EQ(bank.size(), m);
  EXPECT_TRUE(torch::allclose(bank.squared_norms(), bank.images().reshape({m, -1}).square().sum(1), 1e-6, 1e-6));
  const auto got = batch_posterior_mean(y, x, t, labels, bank.images(), bank.labels(), bank.squared_norms());
  const auto refs = torch::cat({y, bank.images()}).reshape({b + m, -1}).to(torch::kFloat64);
  const auto classes = torch::cat({labels, bank.labels()});
  const auto xs = x.reshape({b, -1}).to(torch::kFloat64);
  const auto squared = (xs.unsqueeze(1) - refs.unsqueeze(0)).square().sum(2);  // [b, b + m], no expansion
  auto logits = -squared / (2.0 * t.to(torch::kFloat64).square().reshape({b, 1}));
  logits = logits.masked_fill(labels.reshape({b, 1}) != classes.reshape({1, b + m}), -INFINITY);
  const auto want = torch::softmax(logits, 1).mm(refs).reshape(y.sizes());
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat64), want, 1e-5, 1e-5)) << (got - want).abs().max();
  // Without the precomputed norms the same, and the bank's rows do move the estimate.
  EXPECT_TRUE(torch::allclose(batch_posterior_mean(y, x, t, labels, bank.images(), bank.labels()), got, 1e-6, 1e-6));
  EXPECT_FALSE(torch::allclose(batch_posterior_mean(y, x, t, labels), got, 1e-3, 1e-3));
  // A restored bank recomputes its norms.
  PosteriorBank restored(m);
  restored.load_state_tensors(bank.state_tensors());
  EXPECT_TRUE(torch::equal(restored.squared_norms(), bank.squared_norms()));
}

// clean_estimate with a bank: the posterior runs over the rows pushed by earlier calls (not this batch's twice), then
// this batch's rows enter; beyond the capacity they overwrite the oldest in place (a ring), and the state round-trips
// through a checkpoint with the ring's position.
TEST(PosteriorBank, HoldsTheLastRowsInARingAndRoundTrips) {
  PosteriorBank bank(3);
  const Batch first{torch::tensor({{1.0f, 0.0f}, {3.0f, 0.0f}}), torch::tensor({5, 6}, torch::kInt64)};
  const auto big_t = torch::tensor({1e6f, 1e6f});
  // An empty bank: the batch posterior alone (at a huge t the plain mean of the batch, 2.0).
  const auto d0 = clean_estimate(TargetEstimate::BatchPosterior, first, first.x, big_t, torch::Tensor(), &bank);
  EXPECT_NEAR(d0[0][0].item<double>(), 2.0, 1e-4);
  ASSERT_EQ(bank.size(), 2);
  EXPECT_EQ(bank.next(), 2);
  const Batch second{torch::tensor({{0.0f, 0.0f}}), torch::tensor({7}, torch::kInt64)};
  const auto d1 = clean_estimate(TargetEstimate::BatchPosterior, second, torch::tensor({{0.2f, 0.0f}}),
                                 torch::tensor({1.0f}), torch::Tensor(), &bank);
  EXPECT_NEAR(d1[0][0].item<double>(), 0.455149, 1e-6);
  ASSERT_EQ(bank.size(), 3);
  EXPECT_EQ(bank.next(), 0);
  const Batch third{torch::tensor({{9.0f, 9.0f}}), torch::tensor({8}, torch::kInt64)};
  bank.push(third);
  ASSERT_EQ(bank.size(), 3);  // (1, 0), the oldest, was overwritten
  EXPECT_EQ(bank.next(), 1);
  EXPECT_TRUE(torch::equal(bank.images(), torch::tensor({{9.0f, 9.0f}, {3.0f, 0.0f}, {0.0f, 0.0f}})));
  EXPECT_TRUE(torch::equal(bank.labels(), torch::tensor({8, 6, 7}, torch::kInt64)));
  // The single-sample target neither reads nor fills the bank.
  EXPECT_TRUE(torch::equal(clean_estimate(TargetEstimate::SingleSample, first, first.x, big_t, torch::Tensor(), &bank),
                           first.x));
  EXPECT_EQ(bank.size(), 3);

  auto state = bank.state_tensors();
  state.emplace_back("teacher.w", torch::ones({1}));
  PosteriorBank restored(3);
  const auto rest = restored.load_state_tensors(state);
  ASSERT_EQ(rest.size(), 1u);
  EXPECT_EQ(rest.front().first, "teacher.w");
  EXPECT_TRUE(torch::equal(restored.images(), bank.images()));
  EXPECT_TRUE(torch::equal(restored.labels(), bank.labels()));
  EXPECT_EQ(restored.next(), 1);
  PosteriorBank smaller(2);
  EXPECT_THAT(error_of([&] { smaller.load_state_tensors(state); }), ::testing::HasSubstr("objective.posterior_bank = 2"));

  // A batch that runs past the end of the ring wraps to its start: (1, 1) into slots 1 and 2, (2, 2) into slot 0.
  restored.push(Batch{torch::tensor({{1.0f, 1.0f}, {1.0f, 1.0f}, {2.0f, 2.0f}}), torch::tensor({1, 1, 2}, torch::kInt64)});
  EXPECT_TRUE(torch::equal(restored.images(), torch::tensor({{2.0f, 2.0f}, {1.0f, 1.0f}, {1.0f, 1.0f}})));
  EXPECT_TRUE(torch::equal(restored.labels(), torch::tensor({2, 1, 1}, torch::kInt64)));
  EXPECT_EQ(restored.next(), 1);
  // A batch larger than the bank: only its last rows stay.
  PosteriorBank two(2);
  two.push(Batch{torch::tensor({{1.0f}, {2.0f}, {3.0f}}), {}});
  EXPECT_TRUE(torch::equal(two.images(), torch::tensor({{2.0f}, {3.0f}})));
  EXPECT_FALSE(two.labels().defined());
  EXPECT_EQ(two.next(), 0);
  // A checkpoint of the earlier layout (oldest first, no position) continues by overwriting its oldest row.
  PosteriorBank old_layout(3);
  old_layout.load_state_tensors({{"posterior_bank.images", torch::tensor({{1.0f}, {2.0f}})}});
  EXPECT_EQ(old_layout.next(), 2);
  old_layout.push(Batch{torch::tensor({{3.0f}, {4.0f}}), {}});
  EXPECT_TRUE(torch::equal(old_layout.images(), torch::tensor({{4.0f}, {2.0f}, {3.0f}})));
  // Labels that stop or start half way are refused, as is a position that is not one.
  EXPECT_THAT(error_of([&] { two.push(Batch{torch::tensor({{1.0f}}), torch::tensor({0}, torch::kInt64)}); }),
              ::testing::HasSubstr("posterior bank: a batch with labels"));
  EXPECT_THAT(error_of([&] {
                PosteriorBank b(3);
                b.load_state_tensors({{"posterior_bank.images", torch::tensor({{1.0f}})},
                                      {"posterior_bank.next", torch::tensor({0}, torch::kInt64)}});
              }),
              ::testing::HasSubstr("posterior_bank.next = 0"));
  EXPECT_THAT(error_of([&] {
                PosteriorBank b(3);
                b.load_state_tensors({{"posterior_bank.images", torch::tensor({{1.0f}})},
                                      {"posterior_bank.next", torch::tensor({1, 1}, torch::kInt64)}});
              }),
              ::testing::HasSubstr("posterior_bank.next holds 2 values"));
}

// The key: read with the batch posterior only, checked, written back; the objectives keep the bank in their
// checkpointed state, so a restored objective gives the continuing one's loss; data-parallel runs are refused.
TEST(PosteriorBank, ConfigStateAndResumeOfEveryObjectiveThatReadsIt) {
  auto model = zero_model(2);
  for (const std::string method : {"edm", "ict", "ect"}) {
    SCOPED_TRACE(method);
    Json objective = objective_root(method)["objective"];
    EXPECT_THAT(error_of([&] {
                  Json o = objective;
                  o["posterior_bank"] = 64;
                  build_objective(Json{{"objective", o}}, model);
                }),
                ::testing::HasSubstr("objective.posterior_bank = 64 is not read"));
    {  // 0 is off with either target: a preset's bank can be switched off with the single-sample target
      Json o = objective;
      o["posterior_bank"] = 0;
      EXPECT_EQ(build_objective(Json{{"objective", o}}, model)->single_process_reason(), "");
    }
    objective["target_estimate"] = "batch_posterior";
    EXPECT_THAT(error_of([&] {
                  Json o = objective;
                  o["posterior_bank"] = -1;
                  build_objective(Json{{"objective", o}}, model);
                }),
                ::testing::HasSubstr("objective.posterior_bank must be >= 0"));
    EXPECT_EQ(build_objective(Json{{"objective", objective}}, model)->single_process_reason(), "");
    objective["posterior_bank"] = 6;
    auto going = build_objective(Json{{"objective", objective}}, model);
    EXPECT_EQ(going->to_json().at("posterior_bank"), 6);
    EXPECT_THAT(going->single_process_reason(), ::testing::HasSubstr("objective.posterior_bank"));
    auto g = gen(11);
    torch::manual_seed(3);
    for (int64_t step = 0; step < 3; ++step)
      going->compute_loss(model, Batch{torch::randn({4, 2}), {}}, {step, 10, step * 4}, g);
    auto restored = build_objective(Json{{"objective", objective}}, model);
    restored->load_state_tensors(going->state_tensors());
    const Batch next{torch::randn({4, 2}) * 0.1, {}};
    const auto generator_state = g.get_state();
    const double a = going->compute_loss(model, next, {3, 10, 12}, g).loss.item<double>();
    g.set_state(generator_state);
    const double b = restored->compute_loss(model, next, {3, 10, 12}, g).loss.item<double>();
    EXPECT_EQ(a, b);
    // A fresh objective (empty bank) differs: the bank is what the posterior used.
    auto fresh = build_objective(Json{{"objective", objective}}, model);
    g.set_state(generator_state);
    EXPECT_NE(fresh->compute_loss(model, next, {3, 10, 12}, g).loss.item<double>(), a);
  }
}
