#pragma once
// The original consistency training's EMA teacher (Song et al. 2023; docs/methods.md section 5).
#include "precond/model.h"

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

// The original CT's EMA teacher theta^- <- mu(k) theta^- + (1 - mu(k)) theta (Song et al. 2023, CT algorithm).
class EmaTeacher {
 public:
  void update(Denoiser& model, double decay);  // first call copies the weights
  // Runs `fn` with the teacher weights loaded into `model`, then puts the student weights back.
  torch::Tensor evaluate(Denoiser& model, const std::function<torch::Tensor()>& fn);
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  void load_state_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

 private:
  std::vector<std::pair<std::string, torch::Tensor>> weights_;  // by parameter name
};

}  // namespace onestep
