#pragma once
// Continuous-time consistency models on TrigFlow (sCM: Lu & Song 2024, "Simplifying, Stabilizing and Scaling
// Continuous-Time Consistency Models", algorithm 1), trained from data (sCT) or distilled from an EDM diffusion
// teacher (sCD). Reference implementation: NVlabs/FastGen fastgen/methods/consistency_model/sCM.py (commit 34f30e8).
// docs/continuous-time.md section 3.
#include "config/config.h"
#include "networks/jvp.h"
#include "objectives/objective.h"

#include <memory>
#include <string>

namespace onestep {

// ||g|| in the tangent normalisation g / (||g|| + c): the paper writes the L2 norm (algorithm 1); FastGen divides
// it by sqrt(d) (g_norm_spatial_invariance = True, sCM.py:272-275) so that c means the same at every resolution.
enum class TangentNorm { Rms, L2 };
template <>
struct EnumTable<TangentNorm> {
  static constexpr EnumNames<TangentNorm, 2> names{{{TangentNorm::Rms, "rms"}, {TangentNorm::L2, "l2"}}};
};

struct ScmConfig {
  bool distillation = false;  // sCD (teacher velocity) instead of sCT (x0 and z's velocity)
  // Proposal: t = arctan(e^tau / sigma_data), tau ~ N(p_mean, p_std^2) (sCM section 4.2; FastGen config_scm.py:35-36).
  double p_mean = -1.0, p_std = 1.4;
  // The tangent's second term grows from 0 to 1 over the first `tangent_warmup` steps (sCM section 4.2; FastGen
  // config_scm.py:51: 10000).
  int64_t tangent_warmup = 10000;
  double tangent_c = 0.1;  // g / (||g|| + c) (sCM section 4.2; config_scm.py:53)
  TangentNorm tangent_norm = TangentNorm::Rms;
  // FastGen multiplies the loss by 1 / sigma, sigma = sigma_data tan(t) (prior_weighting_enabled, sCM.py:278);
  // algorithm 1 has no prior weight. Off by default (the paper's).
  bool prior_weighting = false;
  std::string teacher;  // sCD: the EDM model file whose probability-flow ODE is distilled
  JvpOptions jvp;
};

class ScmObjective : public Objective {
 public:
  explicit ScmObjective(ScmConfig config);
  std::string name() const override { return config_.distillation ? "scd" : "sct"; }
  LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                          at::Generator& generator) override;
  Json to_json() const override;
  const ScmConfig& config() const { return config_; }
  const Denoiser& teacher() const { return teacher_; }  // sCD's EDM model; empty for sCT

 private:
  ScmConfig config_;
  Denoiser teacher_{nullptr};
};

// The sCM loss of a batch given every draw (tests compare it with a hand computation): x0 [B, ...] data, z [B, ...]
// noise of std sigma_data, t [B] TrigFlow times, dxdt [B, ...] the tangent of x_t (sCT: cos(t) z - sin(t) x0; sCD:
// the teacher's velocity), warmup in [0, 1]. `tangent` receives the normalised g (tests).
struct ScmLoss {
  torch::Tensor loss, squared_error, logvar, tangent;
};
ScmLoss scm_loss(DenoiserImpl& model, const torch::Tensor& x0, const torch::Tensor& z, const torch::Tensor& t,
                 const torch::Tensor& dxdt, double warmup, const torch::Tensor& labels, const ScmConfig& config);

// Reads the sCT / sCD keys of [objective] (objective_factory.cpp calls it for method = "sct" | "scd").
std::unique_ptr<Objective> build_scm_objective(SectionReader& reader, ObjectiveMethod method, const Denoiser& model);

}  // namespace onestep
