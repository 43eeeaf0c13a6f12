#pragma once
// sCM's adaptive loss weight (Lu & Song 2024, section 4.2): a learned log-variance w(t), one scalar per
// time, with the loss e^{-w(t)} / D ||F - F^- - g||^2 + w(t); its minimiser makes e^{w(t)} the expected
// squared error at t, so every t contributes a loss of about 1. A linear map of a positional embedding of t
// (docs/continuous-time.md section 3).
#include "networks/embeddings.h"
#include "networks/layers.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace onestep {

class LogVarHeadImpl : public torch::nn::Module {
 public:
  explicit LogVarHeadImpl(int64_t channels = 128);
  // t: TrigFlow times in [0, pi/2], [B] -> w(t) [B], float32. Starts at 0 (weight 1 for every t).
  torch::Tensor forward(const torch::Tensor& t);

 private:
  PositionalEmbedding embed_{nullptr};
  Linear linear_{nullptr};
};
TORCH_MODULE(LogVarHead);

}  // namespace onestep
