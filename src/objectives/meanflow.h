#pragma once
// MeanFlow training (Geng et al. 2025; reference code py-meanflow, cited at commit 1f6d72d): the MeanFlow identity
// u(z_t, r, t) = v - (t - r) du/dt, with du/dt the JVP of u along (v, 0, 1) in (z, r, t), as the regression target
// of u itself under a stop-gradient. docs/continuous-time.md section 2.
#include "config/config.h"
#include "networks/jvp.h"
#include "objectives/objective.h"

#include <memory>

namespace onestep {

// How (t, r) pairs are drawn from two logit-normal times (py-meanflow meanflow/models/time_sampler.py):
// SortThenTie ("v0", the paper's): t, r = max, min of the two, then r = t with probability 1 - ratio.
// TieThenClamp ("v1", py-meanflow's default): r = t with probability 1 - ratio, then r = min(t, r).
enum class MeanFlowTimePairs { SortThenTie, TieThenClamp };
template <>
struct EnumTable<MeanFlowTimePairs> {  // objective.time_pairs
  static constexpr EnumNames<MeanFlowTimePairs, 2> names{
      {{MeanFlowTimePairs::TieThenClamp, "tie_then_clamp"}, {MeanFlowTimePairs::SortThenTie, "sort_then_tie"}}};
};

struct MeanFlowConfig {
  // Logit-normal t = sigmoid(N(p_mean_t, p_std_t^2)), r likewise: py-meanflow's defaults and CIFAR-10 run
  // (meanflow/train_arg_parser.py:59-62; meanflow/scripts/cifar10_v1.sh).
  double p_mean_t = -0.6, p_std_t = 1.6, p_mean_r = -4.0, p_std_r = 1.6;
  double ratio = 0.75;  // the share of pairs drawn with r != t (train_arg_parser.py:55; the paper's table 1a: 25%)
  MeanFlowTimePairs time_pairs = MeanFlowTimePairs::TieThenClamp;  // train_arg_parser.py:57
  // Adaptive weight w = 1 / sg(||delta||^2 + c)^p (the paper section 4.3; meanflow.py:63-64): p 0.75, c 1e-3
  // (train_arg_parser.py:64-65).
  double norm_p = 0.75, norm_eps = 1e-3;
  JvpOptions jvp;  // objective.jvp, objective.fd_step
};

class MeanFlowObjective : public Objective {
 public:
  explicit MeanFlowObjective(MeanFlowConfig config) : config_(config) {}
  std::string name() const override { return "meanflow"; }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  Json to_json() const override;
  // (t, r) for `count` samples, float32 on `device`, drawn with `generator`; r <= t.
  std::pair<torch::Tensor, torch::Tensor> draw_times(int64_t count, at::Generator& generator,
                                                     const torch::Device& device) const;

 private:
  MeanFlowConfig config_;
};

// The MeanFlow loss of a batch given every draw, as a function (tests compare it with a closed form): x [B, ...]
// data, e [B, ...] noise, t and r [B]. Returns the weighted loss (mean over the batch) and the unweighted squared
// errors [B].
struct MeanFlowLoss {
  torch::Tensor loss, squared_error;
};
MeanFlowLoss meanflow_loss(DenoiserImpl& model, const torch::Tensor& x, const torch::Tensor& e, const torch::Tensor& t,
                           const torch::Tensor& r, const torch::Tensor& labels, const MeanFlowConfig& config);

// Reads the MeanFlow keys of [objective] (objective_factory.cpp calls it for method = "meanflow").
std::unique_ptr<Objective> build_meanflow_objective(SectionReader& reader, const Denoiser& model);

}  // namespace onestep
