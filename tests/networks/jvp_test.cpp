// The network JVP (src/networks/jvp.h) against two independent references, in float64: central finite differences
// and double backward (J v = d/du <J^T u, v>, two reverse passes). Every network onestep builds: the 2-D MLP, the
// Fashion-MNIST UNet preset, DDPM++ and NCSN++ (attention, FIR resampling, Fourier embedding, residual encoder), ADM, and
// the two-time-input variants MeanFlow uses.
#include "config/config.h"
#include "core/error.h"
#include "networks/jvp.h"
#include "networks/network.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include <iostream>

#include "error_message.h"

using namespace onestep;

namespace {

double jvp_relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

// J v by double backward: y = f(p); g(u) = J^T u (a graph in u); J v = d<g(u), v>/du.
torch::Tensor double_backward_jvp(const TensorFunction& f, const std::vector<torch::Tensor>& primals,
                                  const std::vector<torch::Tensor>& tangents) {
  std::vector<torch::Tensor> inputs;
  for (const auto& p : primals) inputs.push_back(p.detach().clone().requires_grad_(true));
  const torch::Tensor y = f(inputs);
  const torch::Tensor u = torch::zeros_like(y).requires_grad_(true);
  const auto g = torch::autograd::grad({y}, inputs, {u}, /*retain_graph=*/true, /*create_graph=*/true,
                                       /*allow_unused=*/true);
  torch::Tensor inner = torch::zeros({}, y.options());
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i].defined()) inner = inner + (g[i] * tangents[i]).sum();
  return torch::autograd::grad({inner}, {u})[0];
}

// The network as a function of (x, noise labels), in float64, eval mode (no dropout) unless `train`.
struct JvpNetworkCase {
  std::shared_ptr<NetworkImpl> net;
  std::vector<torch::Tensor> primals, tangents;
  TensorFunction f;
};

JvpNetworkCase jvp_make_case(const Json& root, std::vector<int64_t> sample_shape, int64_t time_inputs = 1,
                      bool train = false, torch::Dtype dtype = torch::kFloat64) {
  torch::manual_seed(3);
  JvpNetworkCase c;
  c.net = build_network(root);
  // Non-zero output layers: the nets start with outputs ~1e-5 of their inputs, which would hide a wrong tangent.
  // Drawn in float32 before the conversion, so that both dtypes get the same network.
  for (auto& p : c.net->parameters()) {
    torch::NoGradGuard no_grad;
    p.add_(torch::randn_like(p) * 0.05);
  }
  c.net->to(dtype);
  c.net->train(train);
  const int64_t batch = 3;
  std::vector<int64_t> shape{batch};
  shape.insert(shape.end(), sample_shape.begin(), sample_shape.end());
  const auto options = torch::TensorOptions().dtype(dtype);
  torch::Tensor labels = time_inputs == 1 ? torch::rand({batch}, options) : torch::rand({batch, time_inputs}, options);
  c.primals = {torch::randn(shape, options), labels};
  c.tangents = {torch::randn(shape, options), torch::randn(labels.sizes(), options)};
  auto net = c.net;
  c.f = [net](const std::vector<torch::Tensor>& p) { return net->forward(p[0], p[1]); };
  return c;
}

Json jvp_mlp_root(int64_t time_inputs = 1) {
  return Json{{"model",
               {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 32}, {"num_layers", 3}, {"noise_channels", 16},
                {"input_frequencies", 2}, {"dropout", 0.3}, {"time_inputs", time_inputs}}}};
}

Json jvp_unet_root(const std::string& variant, int64_t time_inputs = 1) {
  return Json{{"model",
               {{"arch", "songunet"}, {"variant", variant}, {"img_resolution", 8}, {"img_channels", 2},
                {"model_channels", 8}, {"channel_mult", {1, 2}}, {"num_blocks", 1}, {"attn_resolutions", {4}},
                {"dropout", 0.3}, {"time_inputs", time_inputs}}}};
}

// Forward AD against central differences (h = 1e-6: truncation ~1e-12, rounding ~1e-10 relative) and double
// backward, both within 1e-5 relative.
void jvp_expect_exact(const JvpNetworkCase& c) {
  const JvpResult ad = jvp(c.f, c.primals, c.tangents);
  const JvpResult fd = jvp(c.f, c.primals, c.tangents, {JvpMethod::FiniteDifference, 1e-6});
  const torch::Tensor reference = double_backward_jvp(c.f, c.primals, c.tangents);
  EXPECT_GT(reference.norm().item<double>(), 1e-3);  // a derivative that is there to get wrong
  EXPECT_LT(jvp_relative_error(ad.tangent, fd.tangent), 1e-5);
  EXPECT_LT(jvp_relative_error(ad.tangent, reference), 1e-5);
  EXPECT_TRUE(torch::allclose(ad.out, c.f(c.primals), 1e-12, 1e-12));
}

}  // namespace

TEST(Jvp, MlpMatchesFiniteDifferencesAndDoubleBackward) { jvp_expect_exact(jvp_make_case(jvp_mlp_root(), {2})); }

TEST(Jvp, MlpWithTwoTimeInputs) { jvp_expect_exact(jvp_make_case(jvp_mlp_root(2), {2}, 2)); }

TEST(Jvp, DdpmppWithAttention) { jvp_expect_exact(jvp_make_case(jvp_unet_root("ddpmpp"), {2, 8, 8})); }

TEST(Jvp, NcsnppFourierResidualFir) { jvp_expect_exact(jvp_make_case(jvp_unet_root("ncsnpp"), {2, 8, 8})); }

TEST(Jvp, SongUNetWithTwoTimeInputs) { jvp_expect_exact(jvp_make_case(jvp_unet_root("ddpmpp", 2), {2, 8, 8}, 2)); }

// ADM (the consistency-model release's U-Net): GroupNorm32, scale-shift conditioning, resampling residual blocks,
// multi-head attention at both levels and in the middle block, the sinusoidal embedding of 1000 c_noise.
TEST(Jvp, AdmWithAttentionAndScaleShift) {
  const Json root{{"model",
                   {{"arch", "adm"}, {"img_resolution", 8}, {"img_channels", 2}, {"label_dim", 0},
                    {"model_channels", 32}, {"channel_mult", {1, 2}}, {"num_res_blocks", 1},
                    {"attn_resolutions", {8, 4}}, {"num_head_channels", 16}, {"dropout", 0.2}}}};
  jvp_expect_exact(jvp_make_case(root, {2, 8, 8}));
}

TEST(Jvp, FashionMnistUnetPreset) {
  jvp_expect_exact(jvp_make_case(load_toml_file(resolve_preset("unet-fmnist-cpu")), {1, 28, 28}));
}

// Dropout in training mode: forward AD carries primal and tangent through one mask; the finite difference rewinds
// the generator so that its three evaluations share the mask. Same seed -> the same mask in all of them.
TEST(Jvp, DropoutUsesOneMaskInEveryPass) {
  for (const Json& root : {jvp_mlp_root(), jvp_unet_root("ddpmpp")}) {
    const bool points = root["model"]["arch"] == "mlp";
    JvpNetworkCase c = jvp_make_case(root, points ? std::vector<int64_t>{2} : std::vector<int64_t>{2, 8, 8}, 1, true);
    torch::manual_seed(9);
    const JvpResult ad = jvp(c.f, c.primals, c.tangents);
    torch::manual_seed(9);
    const JvpResult fd = jvp(c.f, c.primals, c.tangents, {JvpMethod::FiniteDifference, 1e-6});
    EXPECT_LT(jvp_relative_error(ad.tangent, fd.tangent), 1e-5);
    EXPECT_TRUE(torch::allclose(ad.out, fd.out, 1e-12, 1e-12));
    // A different mask gives a different derivative: the comparison above can fail.
    torch::manual_seed(10);
    const JvpResult other = jvp(c.f, c.primals, c.tangents);
    EXPECT_GT(jvp_relative_error(other.tangent, ad.tangent), 1e-2);
  }
}

// The finite-difference fallback as the objectives run it: float32 network, h = 1e-3 (JvpOptions' default),
// against float64 forward AD. Measured on the Fashion-MNIST UNet and the MLP (about 1e-4 .. 1e-3 relative: the
// O(eps32 / h) rounding dominates); the bound leaves a factor ~10.
TEST(Jvp, FiniteDifferenceFallbackErrorInFloat32) {
  for (const auto& [root, shape] : {std::pair{load_toml_file(resolve_preset("unet-fmnist-cpu")), std::vector<int64_t>{1, 28, 28}},
                                    std::pair{jvp_mlp_root(), std::vector<int64_t>{2}}}) {
    JvpNetworkCase exact = jvp_make_case(root, shape);
    const torch::Tensor reference = jvp(exact.f, exact.primals, exact.tangents).tangent;
    JvpNetworkCase c = jvp_make_case(root, shape, 1, false, torch::kFloat32);
    std::vector<torch::Tensor> p32, v32;
    for (size_t i = 0; i < 2; ++i) {
      p32.push_back(exact.primals[i].to(torch::kFloat32));
      v32.push_back(exact.tangents[i].to(torch::kFloat32));
    }
    const double fd_error = jvp_relative_error(jvp(c.f, p32, v32, {JvpMethod::FiniteDifference}).tangent.to(torch::kFloat64), reference);
    const double ad_error = jvp_relative_error(jvp(c.f, p32, v32).tangent.to(torch::kFloat64), reference);
    std::cout << "[ measured ] " << root["model"]["arch"] << ": finite-difference JVP (float32, h = 1e-3) relative error "
              << fd_error << ", forward AD in float32 " << ad_error << "\n";
    EXPECT_LT(fd_error, 1e-2);
    EXPECT_LT(ad_error, 1e-4);
    EXPECT_GT(fd_error, ad_error);  // the fallback is the less exact one
  }
}

// The primal output keeps its graph: the objectives backpropagate through it (MeanFlow's u), and the gradient is
// the plain forward pass's.
TEST(Jvp, OutputBackpropagatesLikeAPlainForward) {
  JvpNetworkCase c = jvp_make_case(jvp_mlp_root(), {2});
  const JvpResult r = jvp(c.f, c.primals, c.tangents);
  EXPECT_FALSE(r.tangent.requires_grad());
  r.out.square().sum().backward();
  std::vector<torch::Tensor> grads;
  for (auto& p : c.net->parameters()) {
    grads.push_back(p.grad().clone());
    p.mutable_grad() = torch::Tensor();
  }
  c.f(c.primals).square().sum().backward();
  size_t i = 0;
  for (auto& p : c.net->parameters()) EXPECT_TRUE(torch::allclose(p.grad(), grads[i++], 1e-12, 1e-12));
}

TEST(Jvp, ConstantOutputHasZeroTangentAndShapesAreChecked) {
  const TensorFunction constant = [](const std::vector<torch::Tensor>& p) { return torch::ones_like(p[0]); };
  const auto x = torch::randn({2, 3});
  EXPECT_TRUE(torch::equal(jvp(constant, {x}, {torch::ones_like(x)}).tangent, torch::zeros_like(x)));
  EXPECT_THAT(onestep::testing::error_of([&] { (void)jvp(constant, {x}, {torch::ones({3})}); }),
              ::testing::HasSubstr("differ in shape"));
  EXPECT_THAT(onestep::testing::error_of([&] { (void)jvp(constant, {x}, {}); }), ::testing::HasSubstr("one tangent per primal"));
  EXPECT_EQ(parse_jvp_method("finite_difference", "objective.jvp"), JvpMethod::FiniteDifference);
  EXPECT_THAT(onestep::testing::error_of([] { (void)parse_jvp_method("exact", "objective.jvp"); }),
              ::testing::HasSubstr("objective.jvp = \"exact\""));
}

// A closed form: f(x, s) = sin(x) s^2 -> J (v, w) = cos(x) s^2 v + 2 s sin(x) w.
TEST(Jvp, ClosedForm) {
  const TensorFunction f = [](const std::vector<torch::Tensor>& p) { return p[0].sin() * p[1].square(); };
  const auto x = torch::tensor({0.3, -1.2}, torch::kFloat64), s = torch::tensor({2.0, 0.5}, torch::kFloat64);
  const auto v = torch::tensor({1.0, 2.0}, torch::kFloat64), w = torch::tensor({-1.0, 0.5}, torch::kFloat64);
  const auto expected = x.cos() * s.square() * v + 2 * s * x.sin() * w;
  EXPECT_TRUE(torch::allclose(jvp(f, {x, s}, {v, w}).tangent, expected, 1e-14, 1e-14));
}
