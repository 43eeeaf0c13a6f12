// MeanFlow and sCM (sCT / sCD on TrigFlow): each loss against a hand computation on a linear network whose JVP is
// closed-form, the stop-gradients, the time draws, the EDM-to-TrigFlow teacher against the Gaussian closed form,
// the few-step samplers, and whole training steps on the real networks.
#include "core/error.h"
#include "core/random.h"
#include "metrics/detector.h"
#include "objectives/meanflow.h"
#include "objectives/scm.h"
#include "precond/meanflow.h"
#include "precond/trigflow.h"
#include "samplers/sampler.h"
#include "gradient_checks.h"
#include "test_networks.h"
#include "trainer/optimizer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "error_message.h"

using namespace onestep;
using ::testing::HasSubstr;

namespace {

at::Generator ct_gen(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

// F(y, times) = y A^T + sum_k times_k b_k^T: linear in the input and in each time input, so every JVP is closed-form.
class LinearTimeNetImpl : public NetworkImpl {
 public:
  LinearTimeNetImpl(int64_t dim, int64_t time_inputs) {
    torch::manual_seed(5);
    a = register_parameter("a", torch::randn({dim, dim}) * 0.5);
    b = register_parameter("b", torch::randn({time_inputs, dim}));
  }
  torch::Tensor forward(const torch::Tensor& y, const torch::Tensor& times, const torch::Tensor& = {},
                        const torch::Tensor& = {}) override {
    const torch::Tensor t2 = times.dim() == 1 ? times.reshape({-1, 1}) : times;
    return y.matmul(a.t().to(y.dtype())) + t2.matmul(b.to(y.dtype()));
  }
  torch::Tensor a, b;
};

Denoiser ct_linear_model(Parameterization p, int64_t dim = 2) {
  PrecondConfig precond;
  precond.parameterization = p;
  const int64_t time_inputs = p == Parameterization::MeanFlow ? 2 : 1;
  Json config{{"arch", "mlp"}, {"in_dim", dim}, {"label_dim", 0}};
  if (time_inputs == 2) config["time_inputs"] = 2;
  return Denoiser(precond, std::make_shared<LinearTimeNetImpl>(dim, time_inputs), config);
}

// A real MLP with the given parameterization (dropout on, train mode).
Denoiser ct_mlp_model(const std::string& parameterization) {
  torch::manual_seed(7);
  Json root{{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 32}, {"num_layers", 2}, {"noise_channels", 16},
                       {"dropout", 0.2}}},
            {"precond", {{"parameterization", parameterization}}}};
  if (parameterization == "meanflow") root["model"]["time_inputs"] = 2;
  Denoiser m = build_model(root);
  m->train();
  return m;
}

double ct_max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// Loss, backward, one optimizer step: every parameter gets a finite, non-zero gradient.
double ct_train_step(Objective& objective, Denoiser& model, const Batch& batch, int64_t step) {
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& p : model->named_parameters()) {
    p.value().mutable_grad() = torch::Tensor();
    params.emplace_back(p.key(), p.value());
  }
  auto optimizer = make_optimizer(OptimizerKind::RAdam, params, {});
  auto g = ct_gen(30 + static_cast<uint64_t>(step));
  const LossOutput out = objective.compute_loss(model, batch, {step, 100, step * batch.x.size(0)}, g);
  out.loss.backward();
  onestep::testing::expect_every_parameter_has_a_finite_nonzero_gradient(model);
  optimizer->step(1e-3);
  return out.loss.item<double>();
}

}  // namespace

// ---- MeanFlow ----

// u = A z + b_0 t + b_1 (t - r); du/dt along (v, 0, 1) in (z, r, t) = A v + b_0 + b_1; target v - (t - r) du/dt;
// loss = mean_i ||u_i - target_i||^2 / (||u_i - target_i||^2 + c)^p. By hand in float64.
TEST(MeanFlowLoss, MatchesTheLinearNetworkClosedForm) {
  Denoiser model = ct_linear_model(Parameterization::MeanFlow);
  auto& net = dynamic_cast<LinearTimeNetImpl&>(model->network());
  torch::manual_seed(1);
  const auto x = torch::randn({6, 2}), e = torch::randn({6, 2});
  const auto t = torch::rand({6}), r = t * torch::rand({6});
  MeanFlowConfig config;
  const MeanFlowLoss out = meanflow_loss(*model, x, e, t, r, {}, config);

  const auto A = net.a.detach().to(torch::kFloat64), B = net.b.detach().to(torch::kFloat64);
  const auto X = x.to(torch::kFloat64), E = e.to(torch::kFloat64);
  const auto T = t.to(torch::kFloat64).reshape({-1, 1}), R = r.to(torch::kFloat64).reshape({-1, 1});
  const auto z = (1 - T) * X + T * E, v = E - X;
  const auto u = z.matmul(A.t()) + T * B[0] + (T - R) * B[1];
  const auto dudt = v.matmul(A.t()) + B[0] + B[1];
  const auto delta = u - (v - (T - R) * dudt);
  const auto sq = delta.square().sum(1);
  const auto expected = (sq / (sq + 1e-3).pow(0.75)).mean();
  EXPECT_NEAR(out.loss.item<double>(), expected.item<double>(), 1e-5 * expected.item<double>());
  EXPECT_LT(ct_max_abs(out.squared_error.to(torch::kFloat64) - sq), 1e-5 * ct_max_abs(sq));

  // The target is under a stop-gradient and so is the weight: d loss / dA = mean_i w_i 2 delta_i z_i^T.
  out.loss.backward();
  const auto w = (sq + 1e-3).pow(-0.75).reshape({-1, 1});
  const auto grad_a = (2 * w * delta).t().matmul(z) / 6.0;
  EXPECT_LT(ct_max_abs(net.a.grad().to(torch::kFloat64) - grad_a), 1e-5 * ct_max_abs(grad_a));
}

TEST(MeanFlowLoss, FiniteDifferenceJvpGivesTheSameLoss) {
  Denoiser model = ct_mlp_model("meanflow");
  model->eval();
  torch::manual_seed(2);
  const auto x = torch::randn({8, 2}), e = torch::randn({8, 2});
  const auto t = torch::rand({8}), r = t * torch::rand({8});
  MeanFlowConfig exact, fd;
  fd.jvp.method = JvpMethod::FiniteDifference;
  const double a = meanflow_loss(*model, x, e, t, r, {}, exact).loss.item<double>();
  const double b = meanflow_loss(*model, x, e, t, r, {}, fd).loss.item<double>();
  EXPECT_NEAR(a, b, 1e-3 * std::abs(a));
}

TEST(MeanFlowTimes, PairsAreOrderedAndTheShareOfTiesIsOneMinusRatio) {
  for (const char* pairs : {"tie_then_clamp", "sort_then_tie"}) {
    SCOPED_TRACE(pairs);
    Denoiser model = ct_linear_model(Parameterization::MeanFlow);
    auto objective = build_objective(Json{{"objective", {{"method", "meanflow"}, {"time_pairs", pairs},
                                                         {"ratio", 0.25}, {"p_mean_t", 0.5}, {"p_std_t", 0.7}}}},
                                     model);
    auto* mf = dynamic_cast<MeanFlowObjective*>(objective.get());
    ASSERT_NE(mf, nullptr);
    auto g = ct_gen(4);
    auto [t, r] = mf->draw_times(40000, g, torch::kCPU);
    EXPECT_TRUE((r <= t).all().item<bool>());
    EXPECT_TRUE(((t > 0) & (t < 1) & (r >= 0)).all().item<bool>());
    // 75% ties plus the rare exact ties of independent draws; +-0.01 is 4.6 standard errors at n = 40000.
    EXPECT_NEAR((r == t).to(torch::kFloat64).mean().item<double>(), 0.75, 0.01);
    if (std::string(pairs) == "tie_then_clamp") {
      // t itself is the logit-normal draw: logit(t) ~ N(0.5, 0.7^2).
      const auto logit = (t / (1 - t)).log().to(torch::kFloat64);
      EXPECT_NEAR(logit.mean().item<double>(), 0.5, 0.02);
      EXPECT_NEAR(logit.std().item<double>(), 0.7, 0.02);
    }
  }
}

TEST(MeanFlowObjective, WholeTrainingStepsOnTheMlp) {
  Denoiser model = ct_mlp_model("meanflow");
  auto objective = build_objective(Json{{"objective", {{"method", "meanflow"}}}}, model);
  torch::manual_seed(3);
  const Batch batch{torch::randn({16, 2}), {}};
  for (int64_t step = 0; step < 2; ++step) EXPECT_TRUE(std::isfinite(ct_train_step(*objective, model, batch, step)));
  EXPECT_EQ(objective->to_json()["jvp"], "forward_ad");
}

TEST(MeanFlowObjective, ConfigurationErrorsNameTheKey) {
  Denoiser edm = build_model(Json{{"model", {{"arch", "mlp"}, {"in_dim", 2}}}});
  EXPECT_THAT(onestep::testing::error_of([&] { build_objective(Json{{"objective", {{"method", "meanflow"}}}}, edm); }),
              HasSubstr("precond.parameterization = \"meanflow\""));
  EXPECT_THAT(onestep::testing::error_of([] {
                build_model(Json{{"model", {{"arch", "mlp"}, {"in_dim", 2}}},
                                 {"precond", {{"parameterization", "meanflow"}}}});
              }),
              HasSubstr("needs model.time_inputs = 2"));
  Denoiser model = ct_linear_model(Parameterization::MeanFlow);
  EXPECT_THAT(onestep::testing::error_of([&] {
                build_objective(Json{{"objective", {{"method", "meanflow"}, {"fd_step", 0.01}}}}, model);
              }),
              HasSubstr("objective.fd_step is read only with objective.jvp = \"finite_difference\""));
  EXPECT_THAT(onestep::testing::error_of([&] {
                build_objective(Json{{"objective", {{"method", "meanflow"}, {"ratio", 1.5}}}}, model);
              }),
              HasSubstr("objective.ratio"));
  EXPECT_THAT(onestep::testing::error_of([&] {
                build_objective(Json{{"objective", {{"method", "meanflow"}, {"p_mean", 0.0}}}}, model);
              }),
              HasSubstr("objective.p_mean is not read by method \"meanflow\""));
}

// 1 step from sigma_0: z_0 = t_0 e - t_0 u(t_0 e, 0, t_0); 2 steps through t_1 likewise, deterministic.
TEST(MeanFlowSampler, StepsTheAverageVelocity) {
  Denoiser model = ct_linear_model(Parameterization::MeanFlow);
  auto& net = dynamic_cast<LinearTimeNetImpl&>(model->network());
  const auto A = net.a.detach().to(torch::kFloat64), B = net.b.detach().to(torch::kFloat64);
  auto u = [&](const torch::Tensor& z, double r, double t) { return z.matmul(A.t()) + t * B[0] + (t - r) * B[1]; };
  torch::manual_seed(8);
  const auto latents = torch::randn({5, 2});
  SamplerConfig config;
  config.sigmas = {1e6, 1.0};  // t = 1 - 1e-6, then t = 0.5
  auto g = ct_gen(0);
  const auto two = run_sampler(model, config, latents, g).to(torch::kFloat64);
  const double t0 = 1e6 / (1 + 1e6);
  auto z = latents.to(torch::kFloat64) * t0;
  z = z - (t0 - 0.5) * u(z, 0.5, t0);
  z = z - 0.5 * u(z, 0.0, 0.5);
  EXPECT_LT(ct_max_abs(two - z), 1e-5);
  config.sigmas = {1e6};
  const auto one = run_sampler(model, config, latents, g).to(torch::kFloat64);
  const auto z1 = latents.to(torch::kFloat64) * t0;
  EXPECT_LT(ct_max_abs(one - (z1 - t0 * u(z1, 0.0, t0))), 1e-5);
}

// ---- TrigFlow and sCM ----

TEST(TrigFlow, ConsistencyFunctionIsTheIdentityAtTimeZeroAndTimesMatchEdmLevels) {
  Denoiser model = ct_mlp_model("trigflow");
  const auto x = torch::randn({4, 2});
  EXPECT_TRUE(torch::equal(trigflow_consistency(*model, x, torch::zeros({4})), x));
  // Same SNR: x_t / cos t = x_0 + tan(t) z with z of std sigma_data, so sigma = sigma_data tan t.
  EXPECT_NEAR(trigflow_time(80.0, 0.5), std::atan(160.0), 1e-15);
  EXPECT_NEAR(0.5 * std::tan(trigflow_time(0.821, 0.5)), 0.821, 1e-12);
  EXPECT_NEAR(trigflow_time(80.0, 0.5), 1.56454, 1e-5);  // sCM's t_max = arctan(80 / 0.5)
  EXPECT_THAT(onestep::testing::error_of([&] { (void)model->forward(x, torch::ones({4}), Scalings::Edm); }),
              HasSubstr("trigflow model (precond.parameterization): it has no EDM denoiser"));
}

// Gaussian data N(mu, a^2): the TrigFlow marginal at t is N(cos(t) mu, cos^2(t) a^2 + sin^2(t) sd^2), and the
// probability-flow ODE moves x_t as mu_t + (s_t / s_0)(x_0 - mu_0): dx/dt = mu_t' + (s_t' / s_t)(x_t - mu_t). The
// EDM teacher (the exact Gaussian denoiser) converted to TrigFlow must give that velocity.
TEST(TrigFlow, EdmTeacherVelocityIsTheGaussianFlow) {
  const double mu = 0.3, a = 0.2, sd = 0.5;
  Denoiser teacher(onestep::testing::edm_precond(), std::make_shared<onestep::testing::GaussianNetImpl>(mu, a, sd),
                   onestep::testing::points_model_config(3));
  const auto t = torch::tensor({0.05, 0.4, 1.0, 1.5}, torch::kFloat32);
  torch::manual_seed(4);
  const auto x_t = torch::randn({4, 3});
  const auto v = edm_teacher_velocity(teacher, x_t, t).to(torch::kFloat64);
  const auto T = t.to(torch::kFloat64).reshape({-1, 1});
  const auto mean = T.cos() * mu, var = T.cos().square() * a * a + T.sin().square() * sd * sd;
  const auto dmean = -T.sin() * mu, dvar = 2 * T.sin() * T.cos() * (sd * sd - a * a);
  const auto expected = dmean + dvar / (2 * var) * (x_t.to(torch::kFloat64) - mean);
  EXPECT_LT(ct_max_abs(v - expected), 1e-4 * (1 + ct_max_abs(expected)));
}

// F(y, t) = A y + b t with y = x_t / sd: dF/dt along (dx_t/dt, 1) = A dx_t/dt / sd + b. By hand in float64: g,
// its normalisation, the loss (logvar = 0 at the start: the mean squared g), and d loss / dA = -2/d mean_i g_i y_i^T.
TEST(ScmLoss, MatchesTheLinearNetworkClosedForm) {
  for (const auto norm : {TangentNorm::Rms, TangentNorm::L2}) {
    Denoiser model = ct_linear_model(Parameterization::TrigFlow, 3);
    auto& net = dynamic_cast<LinearTimeNetImpl&>(model->network());
    torch::manual_seed(6);
    const auto x0 = torch::randn({5, 3}), z = torch::randn({5, 3}) * 0.5;
    const auto t = torch::rand({5}) * 1.5;
    const auto dxdt = trigflow_velocity(x0, z, t);
    ScmConfig config;
    config.tangent_norm = norm;
    const double warmup = 0.3, sd = 0.5;
    const ScmLoss out = scm_loss(*model, x0, z, t, dxdt, warmup, {}, config);

    const auto A = net.a.detach().to(torch::kFloat64), B = net.b.detach().to(torch::kFloat64)[0];
    const auto T = t.to(torch::kFloat64).reshape({-1, 1});
    const auto X0 = x0.to(torch::kFloat64), Z = z.to(torch::kFloat64);
    const auto xt = T.cos() * X0 + T.sin() * Z, V = T.cos() * Z - T.sin() * X0;
    const auto y = xt / sd;
    const auto F = y.matmul(A.t()) + T * B;
    const auto dFdt = (V / sd).matmul(A.t()) + B;
    auto g = -T.cos().square() * (sd * F - V) - warmup * T.cos() * T.sin() * (xt + sd * dFdt);
    auto gn = g.square().sum(1, true).sqrt();
    if (norm == TangentNorm::Rms) gn = gn / std::sqrt(3.0);
    g = g / (gn + 0.1);
    const auto expected = g.square().mean(1).mean();
    EXPECT_LT(ct_max_abs(out.tangent.to(torch::kFloat64) - g), 1e-5);
    EXPECT_NEAR(out.loss.item<double>(), expected.item<double>(), 1e-5 * expected.item<double>());
    out.loss.backward();
    const auto grad_a = (-2.0 / 3.0) * g.t().matmul(y) / 5.0;
    EXPECT_LT(ct_max_abs(net.a.grad().to(torch::kFloat64) - grad_a), 1e-5 * ct_max_abs(grad_a));
    // The log-variance head: d/dw (e^{-w} L + w) = 1 - L at w = 0, through the head's bias (mean over the batch).
    const auto head_bias = model->logvar_head()->named_parameters()["linear.bias"];
    EXPECT_NEAR(head_bias.grad().item<double>(), (1 - g.square().mean(1)).mean().item<double>(), 1e-5);
  }
}

TEST(ScmLoss, FiniteDifferenceJvpGivesTheSameTangent) {
  Denoiser model = ct_mlp_model("trigflow");
  model->eval();
  torch::manual_seed(2);
  const auto x0 = torch::randn({8, 2}), z = torch::randn({8, 2}) * 0.5;
  const auto t = torch::rand({8}) * 1.5;
  const auto dxdt = trigflow_velocity(x0, z, t);
  ScmConfig exact, fd;
  fd.jvp.method = JvpMethod::FiniteDifference;
  const auto a = scm_loss(*model, x0, z, t, dxdt, 1.0, {}, exact).tangent;
  const auto b = scm_loss(*model, x0, z, t, dxdt, 1.0, {}, fd).tangent;
  EXPECT_LT(ct_max_abs(a - b), 1e-3);
}

TEST(ScmObjective, SctWholeTrainingStepsOnTheMlp) {
  Denoiser model = ct_mlp_model("trigflow");
  auto objective = build_objective(Json{{"objective", {{"method", "sct"}, {"tangent_warmup", 2}}}}, model);
  torch::manual_seed(3);
  const Batch batch{torch::randn({16, 2}), {}};
  for (int64_t step = 0; step < 3; ++step) EXPECT_TRUE(std::isfinite(ct_train_step(*objective, model, batch, step)));
  EXPECT_EQ(objective->name(), "sct");
}

TEST(ScmObjective, ScdFromTheShippedFashionMnistTeacher) {
  const std::string teacher = (assets_dir() / "fmnist_edm_teacher.safetensors").string();
  Denoiser source = load_model(teacher);
  Json root{{"model", source->model_config()}, {"precond", {{"parameterization", "trigflow"}}}};
  root["model"]["dropout"] = 0.0;
  Denoiser model = build_model(root);
  // sCD starts the student from the teacher's network; the student's log-variance head stays fresh.
  (void)copy_init_weights(model, source, teacher);
  model->train();
  auto objective = build_objective(Json{{"objective", {{"method", "scd"}, {"teacher", teacher}}}}, model);
  torch::manual_seed(3);
  const Batch batch{torch::rand({2, 1, 28, 28}) * 2 - 1, {}};
  EXPECT_TRUE(std::isfinite(ct_train_step(*objective, model, batch, 0)));
  EXPECT_THAT(onestep::testing::error_of([&] { build_objective(Json{{"objective", {{"method", "scd"}}}}, model); }),
              HasSubstr("needs objective.teacher"));
  EXPECT_THAT(onestep::testing::error_of([&] {
                build_objective(Json{{"objective", {{"method", "sct"}, {"teacher", teacher}}}}, model);
              }),
              HasSubstr("objective.teacher is read only by method \"scd\""));
  Denoiser edm = build_model(Json{{"model", {{"arch", "mlp"}, {"in_dim", 2}}}});
  EXPECT_THAT(onestep::testing::error_of([&] { build_objective(Json{{"objective", {{"method", "sct"}}}}, edm); }),
              HasSubstr("precond.parameterization = \"trigflow\""));
}

// F = 0 through a zero network: f(x, t) = cos(t) x. 1 step: cos(t_0) sd z; 2 steps re-noise with the generator's
// next draw: f(cos(t_1) x + sin(t_1) sd z', t_1).
TEST(TrigFlowSampler, OneAndTwoStepsAtTheConvertedTimes) {
  PrecondConfig precond;
  precond.parameterization = Parameterization::TrigFlow;
  Denoiser model(precond, std::make_shared<onestep::testing::ZeroNetImpl>(), onestep::testing::points_model_config(2));
  torch::manual_seed(8);
  const auto latents = torch::randn({5, 2}, torch::kFloat64);
  SamplerConfig config;
  config.sigmas = {80.0, 0.821};
  auto g = ct_gen(12);
  const auto two = run_sampler(model, config, latents.to(torch::kFloat32), g).to(torch::kFloat64);
  const double t0 = std::atan(160.0), t1 = std::atan(0.821 / 0.5);
  auto replay = ct_gen(12);
  const auto z = random_normal({5, 2}, replay, torch::kCPU, torch::kFloat64, "test");
  const auto x1 = std::cos(t0) * 0.5 * latents.to(torch::kFloat32).to(torch::kFloat64);
  const auto expected = std::cos(t1) * (std::cos(t1) * x1 + std::sin(t1) * 0.5 * z);
  EXPECT_LT(ct_max_abs(two - expected), 1e-6);
}
