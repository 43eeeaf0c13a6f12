#include "networks/unet_block.h"

#include <cmath>

namespace onestep {

UNetBlockImpl::UNetBlockImpl(const UNetBlockOptions& o) : options_(o) {
  // Registration order follows EDM's constructor so that state dicts list tensors in the same order.
  norm0 = register_module("norm0", GroupNorm(o.in_channels, o.eps));
  Conv2dOptions c0{o.in_channels, o.out_channels, 3, true, o.up, o.down, false, o.resample_filter, o.init};
  conv0 = register_module("conv0", Conv2d(c0));
  affine = register_module("affine", Linear(o.emb_channels, o.out_channels * (o.adaptive_scale ? 2 : 1), true, o.init));
  norm1 = register_module("norm1", GroupNorm(o.out_channels, o.eps));
  Conv2dOptions c1{o.out_channels, o.out_channels, 3, true, false, false, false, o.resample_filter, o.init_zero};
  conv1 = register_module("conv1", Conv2d(c1));
  if (o.out_channels != o.in_channels || o.up || o.down) {
    const int64_t kernel = (o.resample_proj || o.out_channels != o.in_channels) ? 1 : 0;
    Conv2dOptions cs{o.in_channels, o.out_channels, kernel, true, o.up, o.down, false, o.resample_filter, o.init};
    skip = register_module("skip", Conv2d(cs));
  }
  if (o.attention) {
    norm2 = register_module("norm2", GroupNorm(o.out_channels, o.eps));
    Conv2dOptions cq{o.out_channels, o.out_channels * 3, 1, true, false, false, false, o.resample_filter, o.init_attn};
    qkv = register_module("qkv", Conv2d(cq));
    Conv2dOptions cp{o.out_channels, o.out_channels, 1, true, false, false, false, o.resample_filter, o.init_zero};
    proj = register_module("proj", Conv2d(cp));
  }
}

torch::Tensor UNetBlockImpl::forward(const torch::Tensor& input, const torch::Tensor& emb) {
  const auto& o = options_;
  torch::Tensor x = conv0->forward(torch::silu(norm0->forward(input)));
  torch::Tensor params = affine->forward(emb).unsqueeze(2).unsqueeze(3).to(x.dtype());
  if (o.adaptive_scale) {
    auto chunks = params.chunk(2, 1);
    x = torch::silu(torch::addcmul(chunks[1], norm1->forward(x), chunks[0] + 1));
  } else {
    x = torch::silu(norm1->forward(x + params));
  }
  x = conv1->forward(onestep::dropout(x, o.dropout, is_training()));
  x = x + (skip ? skip->forward(input) : input);
  x = x * o.skip_scale;

  if (o.attention) {
    // EDM's reshape [B*heads, C/heads, 3, HW]: output channel 3*c + {0,1,2} of qkv is q, k, v of channel c.
    const int64_t batch = x.size(0), channels = x.size(1);
    auto qkv_parts = qkv->forward(norm2->forward(x)).reshape({batch * o.num_heads, channels / o.num_heads, 3, -1})
                         .unbind(2);
    const torch::Tensor& q = qkv_parts[0];
    const torch::Tensor& k = qkv_parts[1];
    const torch::Tensor& v = qkv_parts[2];
    // softmax(q^T k / sqrt(C)) over keys, computed in fp32 whatever the activation dtype (EDM's AttentionOp), or in
    // fp64 for fp64 activations (the JVP tests compare float64 derivatives with finite differences).
    const double scale = std::sqrt(static_cast<double>(k.size(1)));
    const auto attention_dtype = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    torch::Tensor weights = torch::bmm(q.to(attention_dtype).transpose(1, 2), (k / scale).to(attention_dtype))
                                .softmax(2)
                                .to(q.dtype());                            // [n, q, k]
    torch::Tensor attended = torch::bmm(v, weights.transpose(1, 2));    // [n, c, q]
    x = proj->forward(attended.reshape(x.sizes())) + x;
    x = x * o.skip_scale;
  }
  return x;
}

int64_t UNetBlockImpl::macs(int64_t& res) const {
  int64_t in_res = res;
  int64_t total = conv0->macs(res);
  const int64_t out_res = res;
  total += affine->macs();
  int64_t r = out_res;
  total += conv1->macs(r);
  if (skip) {
    r = in_res;
    total += skip->macs(r);
  }
  if (options_.attention) {
    const int64_t pixels = out_res * out_res, c = options_.out_channels;
    r = out_res;
    total += qkv->macs(r);
    r = out_res;
    total += proj->macs(r);
    total += 2 * pixels * pixels * c;  // q^T k and v w^T
  }
  return total;
}

}  // namespace onestep
