#pragma once
// EDM2's magnitude-preserving layers (Karras et al. 2024, "Analyzing and Improving the Training Dynamics of
// Diffusion Models", training/networks_edm2.py): every operation keeps activations at unit expected magnitude, so
// the network needs no normalisation layers, biases or learned scales beyond two gains. Equation numbers are the
// paper's; docs/methods.md ("EDM2 magnitude-preserving U-Net") summarises them.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <vector>

namespace onestep {

// x / (eps + ||x|| / sqrt(n)) over `dims` (empty: every dimension but the first), the norm in float32: unit
// root-mean-square magnitude per slice. EDM2's normalize(): eps is added after the 1/sqrt(n) scaling.
torch::Tensor mp_normalize(const torch::Tensor& x, std::vector<int64_t> dims = {}, double eps = 1e-4);
// silu(x) / 0.596 (Eq. 81): unit magnitude for unit-normal input.
torch::Tensor mp_silu(const torch::Tensor& x);
// lerp(a, b, t) / sqrt((1-t)^2 + t^2) (Eq. 88).
torch::Tensor mp_sum(const torch::Tensor& a, const torch::Tensor& b, double t);
// Concatenation along channels with weights that keep unit magnitude and give b the share t (Eq. 103).
torch::Tensor mp_cat(const torch::Tensor& a, const torch::Tensor& b, double t);
// 2x down- (depthwise conv, stride 2) or up-sampling (transposed, filter x4) by the separable normalised filter `f`.
enum class Resample { Keep, Down, Up };
torch::Tensor mp_resample(const torch::Tensor& x, const std::vector<double>& f, Resample mode);

// While a MetaInit lives (on this thread), the MP layers create their parameters and buffers on the meta device:
// shapes without memory, so that the parameter count and MACs of a full-size network (EDM2-XL: 1.1e9 parameters)
// are read from the real constructor without allocating it (`onestep info`, tests).
class MetaInit {
 public:
  MetaInit();
  ~MetaInit();
  MetaInit(const MetaInit&) = delete;
  MetaInit& operator=(const MetaInit&) = delete;

 private:
  bool previous_;
};
// Options for a new parameter or buffer: float32, on the meta device while a MetaInit lives.
torch::TensorOptions mp_init_options();

// Fourier features cos(2 pi (f x + p)) * sqrt(2) with fixed random frequencies and phases (Eq. 75); buffers
// "freqs" = 2 pi N(0, 1) and "phases" = 2 pi U(0, 1) as EDM2 stores them.
class MPFourierImpl : public torch::nn::Module {
 public:
  explicit MPFourierImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);  // [B] -> [B, channels]
  torch::Tensor freqs, phases;
};
TORCH_MODULE(MPFourier);

// A bias-free convolution (kernel [k, k]) or fully connected layer (no kernel) whose weight is normalised to unit
// magnitude per output channel at every use and scaled by gain / sqrt(fan_in) (Eq. 47). In training mode with
// gradients on, the stored weight itself is first replaced by its normalised version (forced weight normalisation,
// Eq. 66), as EDM2 does before each forward pass; passes without gradients (ECT's teacher pass, sampling) leave it
// alone, as ECT's loss does with its disable_forced_wn() context.
class MPConvImpl : public torch::nn::Module {
 public:
  MPConvImpl(int64_t in_channels, int64_t out_channels, int64_t kernel);  // kernel 0: fully connected
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& gain = {});
  // Multiply-accumulates for one sample at `res` x `res` (ignored by a fully connected layer).
  int64_t macs(int64_t res) const;
  int64_t in_channels, out_channels, kernel;
  torch::Tensor weight;
};
TORCH_MODULE(MPConv);

}  // namespace onestep
