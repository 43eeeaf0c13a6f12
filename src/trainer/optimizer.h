#pragma once
// The optimizers the papers use: Adam (EDM pretraining) and RAdam (iCT and ECT): docs/methods.md sections 3, 6-8.
// LibTorch has no RAdam, and both are written here the same way so that their state checkpoints by name and a
// resumed run continues bitwise. The learning rate is passed per step (warm-up lives in the trainer).
#include "config/enum_names.h"

#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

struct AdamHyper {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class Optimizer {
 public:
  // `params` are (name, parameter) pairs; names key the checkpointed state ("<name>.exp_avg").
  Optimizer(std::vector<std::pair<std::string, torch::Tensor>> params, AdamHyper hyper);
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // One update with learning rate `lr`, using the parameters' current .grad() (parameters without a gradient
  // are skipped, as in PyTorch).
  void step(double lr);
  int64_t steps_taken() const { return step_count_; }
  // State for checkpoints: "step" and "<param>.exp_avg", "<param>.exp_avg_sq".
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  // `find` returns nullptr when a name is absent (an error names it).
  void load_state_tensors(const std::function<const torch::Tensor*(const std::string&)>& find);

 protected:
  // Applies the update for step t (1-based) given the already-updated moments.
  virtual void apply(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& exp_avg,
                     std::vector<torch::Tensor>& exp_avg_sq, int64_t t, double lr) = 0;
  AdamHyper hyper_;

 private:
  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_;
  int64_t step_count_ = 0;
};

// Kingma & Ba, as torch.optim.Adam (amsgrad off, L2 weight decay added to the gradient).
class Adam : public Optimizer {
 public:
  using Optimizer::Optimizer;
  std::string name() const override { return "adam"; }

 protected:
  void apply(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& exp_avg,
             std::vector<torch::Tensor>& exp_avg_sq, int64_t t, double lr) override;
};

// Liu et al. 2020, "On the Variance of the Adaptive Learning Rate", as torch.optim.RAdam (decoupled=False):
// while the variance of the adaptive rate is intractable (rho_t <= 5) the step is plain momentum SGD with
// bias correction; afterwards Adam's step times the rectification r_t.
class RAdam : public Optimizer {
 public:
  using Optimizer::Optimizer;
  std::string name() const override { return "radam"; }
  // rho_t of the paper (eq. 6 region): rho_inf - 2 t beta2^t / (1 - beta2^t).
  static double rho(int64_t t, double beta2);
  // r_t, defined when rho(t) > 5.
  static double rectification(int64_t t, double beta2);

 protected:
  void apply(std::vector<torch::Tensor>& params, std::vector<torch::Tensor>& exp_avg,
             std::vector<torch::Tensor>& exp_avg_sq, int64_t t, double lr) override;
};

// train.optimizer.
enum class OptimizerKind { RAdam, Adam };
template <>
struct EnumTable<OptimizerKind> {
  static constexpr EnumNames<OptimizerKind, 2> names{{{OptimizerKind::RAdam, "radam"}, {OptimizerKind::Adam, "adam"}}};
};

std::unique_ptr<Optimizer> make_optimizer(OptimizerKind kind,
                                          std::vector<std::pair<std::string, torch::Tensor>> params,
                                          AdamHyper hyper);

}  // namespace onestep
