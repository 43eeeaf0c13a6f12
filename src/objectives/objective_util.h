#pragma once
// Pieces shared by the objectives: the per-sample distance metrics, the shared dropout state of student and
// teacher, and class-label encoding.
#include "data/dataset.h"
#include "precond/model.h"

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <vector>

namespace onestep {

// Squared L2 over everything but the batch dimension: [B, ...] -> [B].
torch::Tensor squared_l2_per_sample(const torch::Tensor& diff);
// iCT pseudo-Huber d = sqrt(||a - b||^2 + c^2) - c with the norm over the WHOLE sample (SPEC section 2: not
// element-wise, which several ports get wrong). [B, ...] -> [B].
torch::Tensor pseudo_huber_per_sample(const torch::Tensor& diff, double c);
// iCT's default c = 0.00054 sqrt(d), d = number of elements of one sample.
double default_huber_c(const std::vector<int64_t>& sample_shape);

// Batch labels (int64 [B]) -> float one-hot [B, label_dim] when the model is conditional, else undefined.
torch::Tensor one_hot_labels(const Denoiser& model, const Batch& batch);

// Student and teacher must see the same dropout mask (iCT/ECT: "same random state"). Dropout draws from the
// global default generator of the model's device, so we snapshot that state before the student forward and put
// it back before the teacher forward; afterwards the state is left where the student forward left it, so the
// stream advances as if only one forward had drawn from it.
class SharedDropoutState {
 public:
  explicit SharedDropoutState(const torch::Device& device);
  void rewind();   // before the teacher forward
  void restore();  // after the teacher forward: continue from where the student left the stream

 private:
  at::Generator generator_;
  torch::Tensor start_, after_student_;
};

Json stat_value(const torch::Tensor& scalar);

}  // namespace onestep
