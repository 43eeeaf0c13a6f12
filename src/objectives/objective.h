#pragma once
// A training objective (EDM diffusion, original CT, iCT, ECT): given the model and a batch, the scalar loss to
// minimize. The trainer owns the optimizer, EMAs and checkpoints; the objective owns its curriculum and, for
// original CT, its EMA teacher. [objective] section; formulas and sources in docs/methods.md sections 3-7.
#include "config/config.h"
#include "data/dataset.h"
#include "precond/model.h"

#include <torch/types.h>

#include <memory>
#include <string>

namespace onestep {

// objective.method, the loss to train with.
enum class ObjectiveMethod { Edm, Ct, Ict, Ect, MeanFlow, Sct, Scd };
template <>
struct EnumTable<ObjectiveMethod> {
  static constexpr EnumNames<ObjectiveMethod, 7> names{{{ObjectiveMethod::Edm, "edm"},
                                                        {ObjectiveMethod::Ct, "ct"},
                                                        {ObjectiveMethod::Ict, "ict"},
                                                        {ObjectiveMethod::Ect, "ect"},
                                                        {ObjectiveMethod::MeanFlow, "meanflow"},
                                                        {ObjectiveMethod::Sct, "sct"},
                                                        {ObjectiveMethod::Scd, "scd"}}};
};

// Where training stands; everything a schedule may depend on.
struct TrainProgress {
  int64_t step = 0;          // optimizer steps done before this one (k)
  int64_t total_steps = 1;   // K
  int64_t images_seen = 0;   // before this step
};

struct LossOutput {
  torch::Tensor loss;  // scalar, mean over the batch, requires grad
  Json stats;          // logged as-is into the metrics log ("N": 41, "stage": 2, "mean_weight": ...)
};

class Objective {
 public:
  virtual ~Objective() = default;
  virtual std::string name() const = 0;
  // `generator` drives all of the objective's randomness (noise, sigma draws, dropout via the global
  // generator state that student and teacher share): same generator state -> same loss.
  virtual LossOutput compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                                  at::Generator& generator) = 0;
  // Called after each optimizer step (original CT updates its EMA teacher here).
  virtual void after_step(Denoiser& /*model*/, const TrainProgress& /*progress*/) {}
  // Extra tensors/state to checkpoint (original CT's teacher weights), by name.
  virtual std::vector<std::pair<std::string, torch::Tensor>> state_tensors() { return {}; }
  virtual void load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& /*tensors*/) {}
  // Non-empty when the objective keeps state of one process's rows that a checkpoint cannot hold for every rank
  // (objective.posterior_bank): the reason a data-parallel run is refused.
  virtual std::string single_process_reason() const { return ""; }
  // The effective [objective] section (defaults filled in).
  virtual Json to_json() const = 0;
};

// Reads [objective] (key `method` = edm | ct | ict | ect | meanflow | sct | scd); unknown keys are rejected.
std::unique_ptr<Objective> build_objective(const Json& root, const Denoiser& model);

}  // namespace onestep
