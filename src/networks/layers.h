#pragma once
// EDM's building blocks (Karras et al. 2022, training/networks.py): Linear and Conv2d with EDM's weight
// initialisation and FIR up/down-sampling, and GroupNorm with EDM's group-count rule. Parameter and buffer
// names equal EDM's ("weight", "bias", "resample_filter") so state dicts convert by name.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace onestep {

// EDM's weight_init: mode is xavier_uniform | xavier_normal | kaiming_uniform | kaiming_normal; the drawn
// weight is multiplied by `weight_scale` and the bias by `bias_scale` (EDM's init_weight / init_bias).
struct InitSpec {
  std::string mode = "kaiming_normal";
  double weight_scale = 1.0;
  double bias_scale = 0.0;
};
torch::Tensor weight_init(at::IntArrayRef shape, const std::string& mode, int64_t fan_in, int64_t fan_out);

// A file's metadata may declare any architecture. While a ParameterBudget lives (on this thread), every parameter
// and buffer the layers create is charged against `max_values` before it is allocated, and exceeding it throws
// `reason` (e.g. "the metadata declares more values than the file stores"), so a network is only built as large
// as the stored tensors can fill. Budgets do not nest: the newest one replaces the previous until destroyed.
class ParameterBudget {
 public:
  ParameterBudget(int64_t max_values, std::string reason);
  ~ParameterBudget();
  ParameterBudget(const ParameterBudget&) = delete;
  ParameterBudget& operator=(const ParameterBudget&) = delete;

 private:
  ParameterBudget* previous_;
  friend void charge_parameter_values(at::IntArrayRef shape);
  int64_t max_values_, left_;
  std::string reason_;
};
// Called by every layer before it allocates a parameter or buffer of `shape` (negative or overflowing shapes
// are refused whether or not a budget is active).
void charge_parameter_values(at::IntArrayRef shape);

class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, const InitSpec& init);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t macs() const { return in_features * out_features; }
  int64_t in_features, out_features;
  torch::Tensor weight, bias;
};
TORCH_MODULE(Linear);

// A convolution with optional 2x up- or down-sampling by the separable FIR filter `resample_filter`
// ([1,1]: box / nearest, [1,3,3,1]: bilinear-like). kernel 0 means "resample only, no weights".
// `fused` merges the resampling into the convolution (used by NCSN++'s residual encoder).
struct Conv2dOptions {
  int64_t in_channels = 0, out_channels = 0, kernel = 3;
  bool bias = true, up = false, down = false, fused = false;
  std::vector<double> resample_filter = {1, 1};
  InitSpec init;
};

class Conv2dImpl : public torch::nn::Module {
 public:
  explicit Conv2dImpl(const Conv2dOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  // MACs for one sample at input resolution `res` x `res` (the filter passes count as depthwise convs);
  // `res` is updated to the output resolution.
  int64_t macs(int64_t& res) const;
  const Conv2dOptions& options() const { return options_; }
  torch::Tensor weight, bias, resample_filter;

 private:
  Conv2dOptions options_;
};
TORCH_MODULE(Conv2d);

// Dropout, y = x * bernoulli(1 - p) / (1 - p), whose masks one forward pass can hand to a second pass over the same
// rows. The consistency objectives' teacher must see the student's mask (iCT/ECT: "the same random state",
// docs/methods.md sections 6-7); drawing it again from a rewound generator costs as much as the first draw, and
// ATen's CPU Bernoulli sampler is serial: 11% of an ECT step of the demo UNet at dropout 0.1 (bench/RESULTS.md),
// where a kept mask costs nothing. On the CPU the draw is ATen's own composite (empty_like, bernoulli_(1 - p),
// div_(1 - p), mul), so the result is bitwise torch::dropout's; elsewhere torch::dropout runs (CUDA's fused kernel
// draws differently) and nothing is kept.
torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

// While one lives (on this thread; the newest replaces the previous until destroyed), dropout() keeps the masks it
// draws; after replay(), the dropout() calls take the kept masks in order instead of drawing.
class DropoutMasks {
 public:
  DropoutMasks();
  ~DropoutMasks();
  DropoutMasks(const DropoutMasks&) = delete;
  DropoutMasks& operator=(const DropoutMasks&) = delete;
  // Switches to replaying: each later dropout() call takes the next kept mask, only its rows `rows` (int64 [n]) when
  // defined (a second pass over a subset of the batch). False, and nothing switched, when a draw was not kept
  // (a device other than the CPU): the caller then replays the generator instead.
  bool replay(const torch::Tensor& rows = torch::Tensor());
  // Called by dropout(): the mask for an input of `sizes` in the current mode, or undefined when not replaying.
  torch::Tensor next_mask(at::IntArrayRef sizes);
  void keep(torch::Tensor mask) { masks_.push_back(std::move(mask)); }
  void missed() { complete_ = false; }

 private:
  DropoutMasks* previous_;
  std::vector<torch::Tensor> masks_;
  torch::Tensor rows_;
  size_t next_ = 0;
  bool replaying_ = false, complete_ = true;
};

// groups = min(32, channels / 4), as EDM's GroupNorm(min_channels_per_group=4).
class GroupNormImpl : public torch::nn::Module {
 public:
  GroupNormImpl(int64_t channels, double eps, int64_t max_groups = 32, int64_t min_channels_per_group = 4);
  torch::Tensor forward(const torch::Tensor& x);
  int64_t groups;
  double eps;
  torch::Tensor weight, bias;
};
TORCH_MODULE(GroupNorm);

}  // namespace onestep
