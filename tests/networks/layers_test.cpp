#include "core/error.h"
#include "networks/embeddings.h"
#include "networks/layers.h"

#include <gtest/gtest.h>

#include <cmath>

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
