#include "networks/layers.h"

#include "core/error.h"

#include <cmath>

namespace onestep {

namespace {
thread_local ParameterBudget* active_budget = nullptr;
thread_local DropoutMasks* active_masks = nullptr;
}  // namespace

ParameterBudget::ParameterBudget(int64_t max_values, std::string reason)
    : previous_(active_budget), max_values_(max_values), left_(max_values), reason_(std::move(reason)) {
  active_budget = this;
}

ParameterBudget::~ParameterBudget() { active_budget = previous_; }

void charge_parameter_values(at::IntArrayRef shape) {
  int64_t count = 1;
  bool overflow = false;
  for (int64_t d : shape) {
    require(d >= 0, "a layer of shape ", shape, " has a negative size");
    overflow = overflow || __builtin_mul_overflow(count, d, &count);
  }
  require(!overflow, "a layer of shape ", shape, " has more than 2^63 values");
  ParameterBudget* budget = active_budget;
  if (budget == nullptr) return;
  require(count <= budget->left_, budget->reason_, " (the network needs more than ", budget->max_values_,
          " parameter values)");
  budget->left_ -= count;
}

torch::Tensor weight_init(at::IntArrayRef shape, const std::string& mode, int64_t fan_in, int64_t fan_out) {
  charge_parameter_values(shape);
  const double in = static_cast<double>(fan_in), out = static_cast<double>(fan_out);
  if (mode == "xavier_uniform") return std::sqrt(6.0 / (in + out)) * (torch::rand(shape) * 2 - 1);
  if (mode == "xavier_normal") return std::sqrt(2.0 / (in + out)) * torch::randn(shape);
  if (mode == "kaiming_uniform") return std::sqrt(3.0 / in) * (torch::rand(shape) * 2 - 1);
  if (mode == "kaiming_normal") return std::sqrt(1.0 / in) * torch::randn(shape);
  fail("unknown weight init mode '", mode, "' (xavier_uniform, xavier_normal, kaiming_uniform, kaiming_normal)");
}

LinearImpl::LinearImpl(int64_t in_features_, int64_t out_features_, bool with_bias, const InitSpec& init)
    : in_features(in_features_), out_features(out_features_) {
  weight = register_parameter(
      "weight", weight_init({out_features, in_features}, init.mode, in_features, out_features) * init.weight_scale);
  if (with_bias)
    bias = register_parameter("bias", weight_init({out_features}, init.mode, in_features, out_features) *
                                          init.bias_scale);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  // One addmm with the bias (torch::linear) rather than a matmul and a broadcast add: one op and one temporary less
  // forward, and the bias gradient comes out of the same backward; equal to the two ops to float rounding.
  return torch::linear(x, weight.to(x.dtype()), bias.defined() ? bias.to(x.dtype()) : torch::Tensor());
}

namespace {
using Ints = std::vector<int64_t>;
torch::Tensor conv(const torch::Tensor& x, const torch::Tensor& w, int64_t stride, int64_t padding, int64_t groups = 1,
                   const torch::Tensor& bias = torch::Tensor()) {
  return torch::conv2d(x, w, bias, Ints{stride, stride}, Ints{padding, padding}, Ints{1, 1}, groups);
}
torch::Tensor conv_transpose(const torch::Tensor& x, const torch::Tensor& w, int64_t stride, int64_t padding,
                             int64_t groups) {
  return torch::conv_transpose2d(x, w, torch::Tensor(), Ints{stride, stride}, Ints{padding, padding}, Ints{0, 0},
                                 groups);
}
}  // namespace

Conv2dImpl::Conv2dImpl(const Conv2dOptions& options) : options_(options) {
  TORCH_INTERNAL_ASSERT(!(options.up && options.down));
  const int64_t k = options.kernel;
  if (k > 0) {
    const int64_t fan_in = options.in_channels * k * k, fan_out = options.out_channels * k * k;
    weight = register_parameter(
        "weight", weight_init({options.out_channels, options.in_channels, k, k}, options.init.mode, fan_in, fan_out) *
                      options.init.weight_scale);
    if (options.bias)
      bias = register_parameter("bias", weight_init({options.out_channels}, options.init.mode, fan_in, fan_out) *
                                            options.init.bias_scale);
  }
  if (options.up || options.down) {
    // Outer product of the 1-D filter, normalised to sum 1: [1, 1, n, n].
    const int64_t taps = static_cast<int64_t>(options.resample_filter.size());
    charge_parameter_values({taps, taps});
    torch::Tensor f = torch::tensor(options.resample_filter, torch::kFloat64).to(torch::kFloat32);
    f = torch::outer(f, f).unsqueeze(0).unsqueeze(1) / f.sum().square();
    resample_filter = register_buffer("resample_filter", f);
  }
}

torch::Tensor Conv2dImpl::forward(const torch::Tensor& input) {
  torch::Tensor x = input;
  const auto& o = options_;
  torch::Tensor w = weight.defined() ? weight.to(x.dtype()) : torch::Tensor();
  torch::Tensor f = resample_filter.defined() ? resample_filter.to(x.dtype()) : torch::Tensor();
  // The bias goes into the convolution that ends the layer (the library adds it to the output tile and reduces its
  // gradient in the same backward): one broadcast add and its gradient's reduction less over the activations than
  // adding it afterwards, equal to that to float rounding. After the fused down-sampling filter it stays separate.
  const torch::Tensor b = bias.defined() ? bias.to(x.dtype()) : torch::Tensor();
  const int64_t w_pad = w.defined() ? w.size(-1) / 2 : 0;
  const int64_t f_pad = f.defined() ? (f.size(-1) - 1) / 2 : 0;
  if (o.fused && o.up && w.defined()) {
    x = conv_transpose(x, f.mul(4).tile({o.in_channels, 1, 1, 1}), 2, std::max<int64_t>(f_pad - w_pad, 0),
                       o.in_channels);
    return conv(x, w, 1, std::max<int64_t>(w_pad - f_pad, 0), 1, b);
  }
  if (o.fused && o.down && w.defined()) {
    x = conv(x, w, 1, w_pad + f_pad);
    x = conv(x, f.tile({o.out_channels, 1, 1, 1}), 2, 0, o.out_channels);
    return b.defined() ? x + b.reshape({1, -1, 1, 1}) : x;
  }
  if (o.up) x = conv_transpose(x, f.mul(4).tile({o.in_channels, 1, 1, 1}), 2, f_pad, o.in_channels);
  if (o.down) x = conv(x, f.tile({o.in_channels, 1, 1, 1}), 2, f_pad, o.in_channels);
  if (w.defined()) return conv(x, w, 1, w_pad, 1, b);
  return b.defined() ? x + b.reshape({1, -1, 1, 1}) : x;
}

int64_t Conv2dImpl::macs(int64_t& res) const {
  const auto& o = options_;
  const int64_t taps = resample_filter.defined() ? resample_filter.size(-1) * resample_filter.size(-1) : 0;
  const int64_t conv = o.kernel * o.kernel * o.in_channels * o.out_channels;
  int64_t total = 0;
  if (o.fused && o.down && o.kernel > 0) {
    total += conv * res * res;  // the convolution runs at the input resolution, then the filter subsamples
    res /= 2;
    total += taps * o.out_channels * res * res;
    return total;
  }
  if (o.up) {
    total += taps * o.in_channels * res * res;  // transposed depthwise filter: each input pixel scatters `taps`
    res *= 2;
  }
  if (o.down) {
    res /= 2;
    total += taps * o.in_channels * res * res;
  }
  total += conv * res * res;
  return total;
}

torch::Tensor dropout(const torch::Tensor& x, double p, bool training) {
  if (!training || p == 0) return x;
  DropoutMasks* masks = active_masks;
  if (masks == nullptr) return torch::dropout(x, p, training);
  if (!x.device().is_cpu() || p >= 1) {
    masks->missed();
    return torch::dropout(x, p, training);
  }
  torch::Tensor mask = masks->next_mask(x.sizes());
  if (!mask.defined()) {  // ATen's CPU composite (aten/src/ATen/native/Dropout.cpp): the same draws, in order
    mask = at::empty_like(x);
    mask.bernoulli_(1 - p);
    mask.div_(1 - p);
    masks->keep(mask);
  }
  return x * mask;
}

DropoutMasks::DropoutMasks() : previous_(active_masks) { active_masks = this; }

DropoutMasks::~DropoutMasks() { active_masks = previous_; }

bool DropoutMasks::replay(const torch::Tensor& rows) {
  if (!complete_) return false;
  replaying_ = true;
  rows_ = rows;
  next_ = 0;
  return true;
}

torch::Tensor DropoutMasks::next_mask(at::IntArrayRef sizes) {
  if (!replaying_) return torch::Tensor();
  // A second pass runs the same network on the same rows (or a subset): the same layers in the same order.
  TORCH_INTERNAL_ASSERT(next_ < masks_.size(), "dropout replay: more dropout layers than the first pass ran");
  torch::Tensor mask = masks_[next_++];
  if (rows_.defined()) mask = mask.index_select(0, rows_);
  TORCH_INTERNAL_ASSERT(mask.sizes() == sizes, "dropout replay: a mask of shape ", mask.sizes(), " for an input of ",
                        sizes);
  return mask;
}

GroupNormImpl::GroupNormImpl(int64_t channels, double eps_, int64_t max_groups, int64_t min_channels_per_group)
    : groups(std::min(max_groups, channels / min_channels_per_group)), eps(eps_) {
  require(groups >= 1, "GroupNorm over ", channels, " channels needs at least ", min_channels_per_group,
          " channels per group");
  charge_parameter_values({2, channels});
  weight = register_parameter("weight", torch::ones({channels}));
  bias = register_parameter("bias", torch::zeros({channels}));
}

torch::Tensor GroupNormImpl::forward(const torch::Tensor& x) {
  return torch::group_norm(x, groups, weight.to(x.dtype()), bias.to(x.dtype()), eps);
}

}  // namespace onestep
