#include "core/error.h"
#include "networks/embeddings.h"
#include "networks/layers.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <tuple>

using onestep::Conv2d;
using onestep::Conv2dOptions;

// [1,1] resampling is a 2x2 box average going down and nearest-neighbour going up (EDM's Conv2d with
// resample_filter [1, 1]; docs/methods.md section 9).
TEST(Layers, BoxFilterDownAndNearestUp) {
  auto x = torch::arange(16, torch::kFloat32).reshape({1, 1, 4, 4});
  Conv2d down(Conv2dOptions{1, 1, 0, true, false, true, false, {1, 1}, {}});
  auto d = down->forward(x);
  EXPECT_TRUE(torch::allclose(d, torch::tensor({2.5f, 4.5f, 10.5f, 12.5f}).reshape({1, 1, 2, 2})));
  Conv2d up(Conv2dOptions{1, 1, 0, true, true, false, false, {1, 1}, {}});
  auto u = up->forward(d);
  EXPECT_EQ(u.sizes(), x.sizes());
  EXPECT_FLOAT_EQ(u[0][0][1][1].item<float>(), 2.5f);
  EXPECT_FLOAT_EQ(u[0][0][0][3].item<float>(), 4.5f);
  EXPECT_EQ(down->named_parameters().size(), 0u);  // kernel 0: resampling only
  int64_t res = 4;
  EXPECT_EQ(down->macs(res), 4 * 2 * 2);
  EXPECT_EQ(res, 2);
}

// [1,3,3,1] down: the 4x4 filter outer([1,3,3,1])/64 with padding 1; a constant image stays constant inside.
TEST(Layers, BilinearFilterKeepsConstants) {
  auto x = torch::ones({1, 2, 8, 8});
  Conv2d down(Conv2dOptions{2, 2, 0, true, false, true, false, {1, 3, 3, 1}, {}});
  auto d = down->forward(x);
  EXPECT_EQ(d.sizes(), (std::vector<int64_t>{1, 2, 4, 4}));
  EXPECT_FLOAT_EQ(d[0][1][1][1].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(d[0][0][0][0].item<float>(), 49.0f / 64.0f);  // border: a tap of weight 1/8 per axis falls in padding
  auto filter = down->named_buffers()["resample_filter"];
  EXPECT_FLOAT_EQ(filter[0][0][1][2].item<float>(), 9.0f / 64.0f);
  Conv2d up(Conv2dOptions{2, 2, 0, true, true, false, false, {1, 3, 3, 1}, {}});
  EXPECT_FLOAT_EQ(up->forward(torch::ones({1, 2, 4, 4}))[0][0][3][4].item<float>(), 1.0f);
}

TEST(Layers, InitScalesAndGroupCount) {
  torch::manual_seed(0);
  onestep::Linear linear(400, 600, true, onestep::InitSpec{"xavier_uniform", 0.5, 0.0});
  const double bound = 0.5 * std::sqrt(6.0 / 1000.0);
  EXPECT_LE(linear->weight.abs().max().item<double>(), bound);
  EXPECT_GT(linear->weight.abs().max().item<double>(), 0.9 * bound);
  EXPECT_EQ(linear->bias.abs().max().item<double>(), 0.0);
  EXPECT_THROW(onestep::weight_init({2}, "orthogonal", 1, 1), onestep::Error);
  EXPECT_EQ(onestep::GroupNorm(256, 1e-6)->groups, 32);
  EXPECT_EQ(onestep::GroupNorm(16, 1e-6)->groups, 4);
  EXPECT_THROW(onestep::GroupNorm(3, 1e-6), onestep::Error);
}

// Positional embedding with endpoint: frequencies 1e-4^(i/(n/2-1)); EDM returns [cos | sin].
TEST(Embeddings, PositionalValuesByHand) {
  onestep::PositionalEmbedding emb(4, 10000, true);
  auto out = emb->forward(torch::tensor({2.0f}));
  EXPECT_FLOAT_EQ(out[0][0].item<float>(), std::cos(2.0f));
  EXPECT_FLOAT_EQ(out[0][1].item<float>(), std::cos(2.0f * 1e-4f));
  EXPECT_FLOAT_EQ(out[0][2].item<float>(), std::sin(2.0f));
  EXPECT_NEAR(out[0][3].item<float>(), std::sin(2e-4), 1e-9);
  onestep::FourierEmbedding fourier(6, 0.02);
  EXPECT_EQ(fourier->forward(torch::zeros({3})).sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_LT(fourier->freqs.abs().max().item<double>(), 0.2);
}

// The bias inside the layer's last convolution (one op) computes the separate broadcast add's output and gradients
// to float rounding, for every path of Conv2d: plain, FIR down/up then the weights, and NCSN++'s fused variants.
TEST(Layers, ConvolutionWithBiasInsideEqualsTheSeparateAdd) {
  const onestep::InitSpec init{"xavier_uniform", 1.0, 1.0};  // bias_scale 1: a bias of the weights' size
  for (const auto& [up, down, fused] : {std::tuple{false, false, false}, std::tuple{false, true, false},
                                        std::tuple{true, false, false}, std::tuple{false, true, true},
                                        std::tuple{true, false, true}}) {
    torch::manual_seed(1);
    Conv2d conv(Conv2dOptions{3, 5, 3, true, up, down, fused, {1, 3, 3, 1}, init});
    ASSERT_GT(conv->bias.abs().max().item<float>(), 0.1f);
    auto x = torch::randn({2, 3, 8, 8}, torch::requires_grad());
    auto out = conv->forward(x);
    auto grad = torch::randn_like(out);
    const auto g = torch::autograd::grad({out}, {x, conv->weight, conv->bias}, {grad});
    // The same layer with the bias added afterwards, by hand: its weights with a zero bias, plus b.
    Conv2d plain(Conv2dOptions{3, 5, 3, false, up, down, fused, {1, 3, 3, 1}, init});
    {
      torch::NoGradGuard no_grad;
      plain->weight.copy_(conv->weight);
    }
    auto b = conv->bias.detach().clone().requires_grad_(true);
    auto x2 = x.detach().clone().requires_grad_(true);
    auto expected = plain->forward(x2) + b.reshape({1, -1, 1, 1});
    auto g2 = torch::autograd::grad({expected}, {x2, plain->weight, b}, {grad});
    const std::string where = "up " + std::to_string(up) + " down " + std::to_string(down) + " fused " +
                              std::to_string(fused);
    EXPECT_TRUE(torch::allclose(out, expected, 1e-5, 1e-6)) << where;
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::allclose(g[i], g2[i], 1e-5, 1e-5)) << where << " gradient " << i;
  }
}

// Linear is one addmm with the bias: the matmul-then-add values and gradients to float rounding.
TEST(Layers, LinearWithBiasEqualsMatmulPlusBias) {
  torch::manual_seed(2);
  onestep::Linear linear(7, 5, true, onestep::InitSpec{"xavier_uniform", 1.0, 1.0});
  auto x = torch::randn({6, 7}, torch::requires_grad());
  auto out = linear->forward(x);
  auto expected = torch::matmul(x, linear->weight.t()) + linear->bias;
  EXPECT_TRUE(torch::allclose(out, expected, 1e-6, 1e-6));
  auto grad = torch::randn_like(out);
  auto g = torch::autograd::grad({out}, {x, linear->weight, linear->bias}, {grad});
  auto g2 = torch::autograd::grad({expected}, {x, linear->weight, linear->bias}, {grad});
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(torch::allclose(g[i], g2[i], 1e-5, 1e-6)) << i;
  onestep::Linear no_bias(7, 5, false, onestep::InitSpec{});
  EXPECT_TRUE(torch::allclose(no_bias->forward(x), torch::matmul(x, no_bias->weight.t()), 1e-6, 1e-6));
}

// onestep::dropout draws what torch::dropout draws, bit for bit, whether or not its masks are kept.
TEST(Layers, DropoutDrawsWhatTorchDropoutDraws) {
  auto x = torch::randn({4, 3, 5, 5});
  torch::manual_seed(3);
  const auto expected = torch::dropout(x, 0.3, true);
  torch::manual_seed(3);
  const auto plain = onestep::dropout(x, 0.3, true);
  torch::Tensor kept;
  {
    torch::manual_seed(3);
    onestep::DropoutMasks masks;
    kept = onestep::dropout(x, 0.3, true);
  }
  EXPECT_TRUE(torch::equal(plain, expected));
  EXPECT_TRUE(torch::equal(kept, expected));
  EXPECT_GT((expected == 0).sum().item<int64_t>(), 0);  // it did drop
  EXPECT_TRUE(torch::equal(onestep::dropout(x, 0.3, false), x));
}

// After replay() the layers take the kept masks (rows of them) and draw nothing from the generator.
TEST(Layers, DropoutReplayReusesTheKeptMasksOfTheRows) {
  auto x1 = torch::randn({6, 4, 3, 3}), x2 = torch::randn({6, 8});
  torch::manual_seed(5);
  onestep::DropoutMasks masks;
  const auto a1 = onestep::dropout(x1, 0.5, true), a2 = onestep::dropout(x2, 0.5, true);
  const auto state = at::detail::getDefaultCPUGenerator().get_state();
  const auto rows = torch::tensor({0, 2, 5}, torch::kInt64);
  ASSERT_TRUE(masks.replay(rows));
  const auto b1 = onestep::dropout(x1.index_select(0, rows), 0.5, true);
  const auto b2 = onestep::dropout(x2.index_select(0, rows), 0.5, true);
  EXPECT_TRUE(torch::equal(b1, a1.index_select(0, rows)));
  EXPECT_TRUE(torch::equal(b2, a2.index_select(0, rows)));
  EXPECT_TRUE(torch::equal(at::detail::getDefaultCPUGenerator().get_state(), state));
  ASSERT_TRUE(masks.replay());  // the whole batch again
  EXPECT_TRUE(torch::equal(onestep::dropout(x1, 0.5, true), a1));
}
