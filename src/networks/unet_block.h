#pragma once
// EDM's UNetBlock as DDPM++/NCSN++ configure it (adaptive_scale off, resample_proj on, one attention head):
// GroupNorm -> SiLU -> conv3x3 (up/down) ; + Linear(emb) ; GroupNorm -> SiLU -> dropout -> conv3x3 ; + skip ;
// * skip_scale, then optional self-attention (edm/training/networks.py, class UNetBlock; docs/methods.md section 9).
#include "networks/layers.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace onestep {

struct UNetBlockOptions {
  int64_t in_channels = 0, out_channels = 0, emb_channels = 0;
  bool up = false, down = false, attention = false;
  int64_t num_heads = 1;
  double dropout = 0.0;
  double skip_scale = 1.0;
  double eps = 1e-5;
  std::vector<double> resample_filter = {1, 1};
  bool resample_proj = false;
  bool adaptive_scale = true;
  InitSpec init, init_zero, init_attn;
};

class UNetBlockImpl : public torch::nn::Module {
 public:
  explicit UNetBlockImpl(const UNetBlockOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& emb);
  int64_t macs(int64_t& res) const;  // one sample at input resolution res (updated to the output resolution)
  const UNetBlockOptions& options() const { return options_; }

 private:
  UNetBlockOptions options_;
  GroupNorm norm0{nullptr}, norm1{nullptr}, norm2{nullptr};
  Conv2d conv0{nullptr}, conv1{nullptr}, skip{nullptr}, qkv{nullptr}, proj{nullptr};
  Linear affine{nullptr};
};
TORCH_MODULE(UNetBlock);

}  // namespace onestep
