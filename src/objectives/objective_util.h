#pragma once
// Pieces shared by the objectives: the per-sample distance metrics, the shared dropout state of student and
// teacher, and class-label encoding.
#include "config/enum_names.h"
#include "data/dataset.h"
#include "networks/layers.h"
#include "precond/model.h"

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace onestep {

// objective.target_estimate: the clean point a pair's target starts from (clean_estimate below).
enum class TargetEstimate { SingleSample, BatchPosterior, Teacher };
template <>
struct EnumTable<TargetEstimate> {
  static constexpr EnumNames<TargetEstimate, 3> names{{{TargetEstimate::SingleSample, "single_sample"},
                                                       {TargetEstimate::BatchPosterior, "batch_posterior"},
                                                       {TargetEstimate::Teacher, "teacher"}}};
};

// Squared L2 over everything but the batch dimension: [B, ...] -> [B].
torch::Tensor squared_l2_per_sample(const torch::Tensor& diff);
// iCT pseudo-Huber d = sqrt(||a - b||^2 + c^2) - c with the norm over the WHOLE sample (iCT section 3.3: not
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
// On the CPU the student's masks are also kept (networks/layers.h, DropoutMasks): replay_masks() hands them to a
// teacher forward over the same rows or a subset of them, which then draws nothing.
class SharedDropoutState {
 public:
  explicit SharedDropoutState(const torch::Device& device);
  void rewind();   // before the teacher forward
  void restore();  // after the teacher forward: continue from where the student left the stream
  // After rewind(): the teacher's dropout layers take the student's kept masks (rows `rows` of them when defined).
  // False when a mask was not kept (not the CPU): the rewound generator then gives the teacher the same masks, over
  // the whole batch only.
  bool replay_masks(const torch::Tensor& rows = torch::Tensor()) { return masks_.replay(rows); }

 private:
  at::Generator generator_;
  torch::Tensor start_, after_student_;
  DropoutMasks masks_;
};

// The consistency target D(x_r, r) under no_grad, nan_to_num'ed, with `clean` (the clean-image estimate) in the rows
// where r = 0 (ECT: the target at r = 0 is the data point itself, docs/methods.md section 7). Call between the
// student forward and dropout.restore(), after dropout.rewind(). Unconditional models on the CPU evaluate only the rows
// with r > 0 (at ECT's first stages most rows have r = 0: 81% at stage 0 with lnN(-1.1, 2^2) and the sigmoid
// mapping), under inference mode, with the student's dropout masks of those rows; equal to the whole-batch forward
// to float rounding. Elsewhere (CUDA: no host sync, fixed shapes for cuDNN; class labels, whose label dropout draws
// per row) the whole batch, rows with r = 0 evaluated at r = 1 and replaced.
torch::Tensor consistency_target(Denoiser& model, const torch::Tensor& x_r, const torch::Tensor& r, Scalings scalings,
                                 const torch::Tensor& labels, const torch::Tensor& clean, SharedDropoutState& dropout);
// Whether consistency_target may evaluate a subset of rows (default true); false gives the whole-batch forward
// everywhere, for tests and benchmarks that compare the two.
void set_consistency_target_row_subset(bool enabled);

Json stat_value(const torch::Tensor& scalar);

// The teacher's input on the way from x_t = y + t n down to a level r < t. The papers (iCT, ECT) use y + r n: the
// Euler step of the probability-flow ODE, x_r = D + (r / t) (x_t - D), with the one-sample denoiser D = y. Its
// conditional mean given x_t is the ODE step, but where x_t's posterior spreads over several parts of the data (large
// t; in 2-D, thin arms side by side) the target varies from pair to pair by the whole spread. target_estimate =
// "batch_posterior" takes D = E[y | x_t] over the batch instead, sum_j w_j y_j with w_j ~ N(x_t; y_j, t^2 I) (and
// only rows of the same class): Stable Target Field (Xu et al. 2023), which reduces the variance of the denoising
// target the same way. At small t the weights fall on the row's own y and the step is the papers' y + r n.
// y and x_t [B, ...], t [B], labels [B] int64 or undefined -> D [B, ...]. `ref_y` [M, ...] (with `ref_labels` [M]
// when labels are given) adds M reference points beside the batch's own rows (PosteriorBank below); their squared norms
// [M] (|ref_y_j|^2 over the flattened row) may be passed precomputed, as the bank keeps them.
torch::Tensor batch_posterior_mean(const torch::Tensor& y, const torch::Tensor& x_t, const torch::Tensor& t,
                                   const torch::Tensor& labels, const torch::Tensor& ref_y = torch::Tensor(),
                                   const torch::Tensor& ref_labels = torch::Tensor(),
                                   const torch::Tensor& ref_squared_norms = torch::Tensor());

// objective.posterior_bank = M: the clean rows of the last M training images, kept as reference points of the batch
// posterior beside the batch's own rows. STF (Xu et al. 2023, section 3) draws a reference batch much larger than the
// training batch; on images a batch of 32 is too small for the posterior to leave the own row except at very large t
// (docs/methods.md section 6). The references are earlier batches, so they are independent of this batch's noise,
// as STF's are. The bank is part of the objective's checkpointed state (exact resume); it holds one process's rows,
// so data-parallel runs refuse it (Objective::single_process_reason).
class PosteriorBank {
 public:
  explicit PosteriorBank(int64_t capacity = 0) : capacity_(capacity) {}
  int64_t capacity() const { return capacity_; }
  int64_t size() const { return size_; }
  // The bank's rows [size, ...] in ring order (not oldest first: the posterior does not depend on the order, and the
  // ring is written in place, without the two copies of the whole bank a shift would cost each step); undefined while
  // empty. labels() likewise: [size] int64, or undefined (unlabelled data).
  torch::Tensor images() const { return size_ > 0 ? images_.narrow(0, 0, size_) : torch::Tensor(); }
  torch::Tensor labels() const { return size_ > 0 && labels_.defined() ? labels_.narrow(0, 0, size_) : torch::Tensor(); }
  // |row|^2 of each row over its flattened pixels, kept as rows enter: [size] float32, or undefined while empty.
  torch::Tensor squared_norms() const { return size_ > 0 ? squared_norms_.narrow(0, 0, size_) : torch::Tensor(); }
  int64_t next() const { return next_; }  // the ring position the next row is written to: the oldest row when full
  // The batch's rows enter; beyond the capacity they overwrite the oldest.
  void push(const Batch& batch);
  // "posterior_bank.images" / ".labels" (the filled rows in ring order) and ".next", so that a resumed run's posterior
  // sums in the continuing run's order (bitwise resume).
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  // Takes the tensors named "posterior_bank.*" and returns the others. A checkpoint without ".next" (written oldest
  // first) continues at size % capacity, which overwrites its oldest row first.
  std::vector<std::pair<std::string, torch::Tensor>> load_state_tensors(
      const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

 private:
  int64_t capacity_;
  int64_t size_ = 0, next_ = 0;
  torch::Tensor images_, labels_, squared_norms_;  // [capacity, ...] once the first batch arrives
};

// Objective::single_process_reason of an objective with this bank: empty when the bank is off.
std::string posterior_bank_reason(const PosteriorBank& bank);
// After PosteriorBank::load_state_tensors: an objective with no other state refuses what is left.
void require_no_other_state(const std::vector<std::pair<std::string, torch::Tensor>>& rest);

// The clean-point estimate of a pair's target under objective.target_estimate: the batch's own rows y
// ("single_sample", the papers') or batch_posterior_mean of them given x_t ("batch_posterior"), over rows of the same
// class when the model is class-conditional (one_hot defined, as one_hot_labels gives it). With a bank of capacity > 0
// the posterior also runs over the bank's rows, and the batch's rows then enter the bank.
torch::Tensor clean_estimate(TargetEstimate target_estimate, const Batch& batch, const torch::Tensor& x_t,
                             const torch::Tensor& t, const torch::Tensor& one_hot, PosteriorBank* bank = nullptr);
// A frozen diffusion teacher (sCD's objective.teacher, ECT's target_estimate = "teacher"): the EDM model file at
// `path` (a relative path is looked up from the working directory, then from the onestep checkout, so that presets'
// "assets/..." resolve from anywhere), in eval mode, without gradients. `key` names the setting in errors.
Denoiser load_frozen_teacher(const std::string& path, const std::string& key);
// The teacher's denoiser D(x_t; t) (EDM scalings) under inference mode: [B, ...].
torch::Tensor teacher_denoised(Denoiser& teacher, const torch::Tensor& x_t, const torch::Tensor& t,
                               const torch::Tensor& one_hot);
// The teacher must describe the student's data: same sample shape and labels, else a one-line error naming `key`.
void require_same_data(const Denoiser& teacher, const Denoiser& model, const std::string& key);

// x_r = D + (r / t) (x_t - D), broadcast over the sample dimensions; [B, ...].
torch::Tensor euler_step_to(const torch::Tensor& x_t, const torch::Tensor& denoised, const torch::Tensor& t,
                            const torch::Tensor& r);

}  // namespace onestep
