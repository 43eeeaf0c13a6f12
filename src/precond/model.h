#pragma once
// A model = preconditioning (docs/methods.md 1) around a network; built from the [model] and [precond] sections,
// saved/loaded as safetensors whose metadata holds the configuration.
#include "config/config.h"
#include "data/point_scaling.h"
#include "networks/logvar_head.h"
#include "networks/network.h"

#include <torch/nn/module.h>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

namespace onestep {

// Edm: c_skip = sd^2/(s^2+sd^2), c_out = s*sd/sqrt(s^2+sd^2).
// Consistency: c_skip = sd^2/((s-smin)^2+sd^2), c_out = (s-smin)*sd/sqrt(s^2+sd^2), so f(x, sigma_min) == x exactly.
enum class Scalings { Edm, Consistency };
template <>
struct EnumTable<Scalings> {  // precond.train_scalings, precond.sample_scalings
  static constexpr EnumNames<Scalings, 2> names{{{Scalings::Edm, "edm"}, {Scalings::Consistency, "consistency"}}};
};

// What the network's output means (docs/continuous-time.md). Edm: the denoiser D = c_skip x + c_out F(c_in x,
// c_noise) (EDM, CT, iCT, ECT). TrigFlow: F(x_t / sigma_data, t) with the consistency function
// f = cos(t) x_t - sin(t) sigma_data F (sCM, Lu & Song 2024 section 3; src/precond/trigflow.h), plus a learned
// log-variance head w(t) for the adaptive loss weight. TrigFlowEdm: the same TrigFlow F computed from an EDM
// denoiser at the same signal-to-noise ratio, F = (cos(t) x_t - D(x_t / cos(t), sigma_data tan(t))) /
// (sigma_data sin(t)) (FastGen's TrigFlowPrecond, sCM.py:21-80): an EDM checkpoint is then an exact starting point
// (sCD from onestep's EDM teachers). MeanFlow: the average velocity u(z_t, r, t) = F(z_t, (t, t - r)) on a
// two-time-input network (Geng et al. 2025; src/precond/meanflow.h).
enum class Parameterization { Edm, TrigFlow, TrigFlowEdm, MeanFlow };
template <>
struct EnumTable<Parameterization> {  // precond.parameterization
  static constexpr EnumNames<Parameterization, 4> names{{{Parameterization::Edm, "edm"},
                                                         {Parameterization::TrigFlow, "trigflow"},
                                                         {Parameterization::TrigFlowEdm, "trigflow_edm"},
                                                         {Parameterization::MeanFlow, "meanflow"}}};
};
inline const char* parameterization_name(Parameterization p) { return enum_name(p); }
inline bool is_trigflow(Parameterization p) {
  return p == Parameterization::TrigFlow || p == Parameterization::TrigFlowEdm;
}

struct PrecondConfig {
  double sigma_data = 0.5;
  double sigma_min = 0.002;
  Scalings train_scalings = Scalings::Consistency;   // ECT: Edm while training,
  Scalings sample_scalings = Scalings::Consistency;  // Consistency when sampling (docs/methods.md section 1)
  Parameterization parameterization = Parameterization::Edm;  // precond.parameterization
  static PrecondConfig from_config(const Json& root);  // reads [precond]
  Json to_json() const;
};

struct ScalingCoefficients {
  torch::Tensor c_skip, c_out, c_in, c_noise;
};
ScalingCoefficients scaling_coefficients(const torch::Tensor& sigma, const PrecondConfig& config, Scalings scalings);

// Holds the network as submodule "model", so parameter names equal EDM's state-dict keys
// ("model.enc.32x32_conv.weight").
class DenoiserImpl : public torch::nn::Module {
 public:
  DenoiserImpl(PrecondConfig precond, std::shared_ptr<NetworkImpl> network, Json model_config);
  // D(x, sigma) = c_skip x + c_out F(c_in x, c_noise); sigma is [B] (or a scalar broadcast to the batch).
  // Only for parameterization Edm: a TrigFlow or MeanFlow model has no denoiser and refuses with one line.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& sigma, Scalings scalings,
                        const torch::Tensor& class_labels = {}, const torch::Tensor& augment_labels = {});
  // The same D for parameterizations Edm and TrigFlowEdm (whose TrigFlow F is computed from it).
  torch::Tensor denoise(const torch::Tensor& x, const torch::Tensor& sigma, Scalings scalings,
                        const torch::Tensor& class_labels = {}, const torch::Tensor& augment_labels = {});
  const PrecondConfig& precond() const { return precond_; }
  const Json& model_config() const { return model_config_; }  // the [model] section, defaults filled in
  int64_t label_dim() const;
  std::vector<int64_t> sample_shape() const;  // [C, H, W] or [D]
  NetworkImpl& network() const { return *network_; }
  // Class labels as the network takes them: float [B, label_dim] (zeros when not given), undefined when
  // unconditional.
  torch::Tensor network_labels(const torch::Tensor& class_labels, int64_t batch, const torch::Device& device) const;
  // The TrigFlow adaptive-weight head w(t) (sCM section 4.2), registered as "logvar" for parameterization TrigFlow only.
  LogVarHead& logvar_head();
  // The objective the weights were trained with ("ect", "ict", "ct", "edm"; "" when unknown), kept in saved files
  // (metadata "onestep" -> "method") so that the consistency sampler re-noises as that method's sampler does.
  const std::string& trained_with() const { return trained_with_; }
  void set_trained_with(std::string method) { trained_with_ = std::move(method); }
  // Point models: the map from the user's coordinates to the model's (data.normalize); identity for images.
  const PointScaling& point_scaling() const { return point_scaling_; }
  void set_point_scaling(PointScaling scaling) { point_scaling_ = std::move(scaling); }
  // What a file's "onestep" metadata holds: {"model", "precond"}, "method" when known, and "point_scaling" when not the identity.
  Json description() const;

 private:
  PrecondConfig precond_;
  PointScaling point_scaling_;
  std::shared_ptr<NetworkImpl> network_;
  LogVarHead logvar_{nullptr};
  Json model_config_;
  std::string trained_with_;
};
TORCH_MODULE(Denoiser);

// Builds from the configuration root ([model] + [precond]); unknown keys are rejected.
Denoiser build_model(const Json& root);

// The tensors of one weight set, by name: the parameters (detached) and buffers, in registration order; what a
// model file stores and what a training checkpoint stores for the raw weights and for each EMA.
std::vector<std::pair<std::string, torch::Tensor>> model_state(Denoiser& model);

// Weights as safetensors; metadata "onestep" = description() ({"model", "precond"[, "method"][, "point_scaling"]})
// so a file loads without being told its architecture. `weights` selects a weight set: in a training checkpoint ""
// (the first EMA), "raw" or an EMA's name ("0.9999" or "ema.0.9999."); in other files a tensor-name prefix ("net."
// of converted EDM files).
void save_model(const std::filesystem::path& path, Denoiser& model,
                const std::map<std::string, std::string>& extra_metadata = {});
Denoiser load_model(const std::filesystem::path& path, const std::string& weights = "");

// Starting weights for a new run (`onestep train --init`): copies every parameter and buffer of `source` into
// `target` by name. Tensors must match name for name and shape for shape, with one exception that ECT makes: EDM's
// public CIFAR-10 checkpoints carry the augmentation conditioning "model.map_augment.*" (augment_dim 9), which a
// target without augmentation (augment_dim 0) drops, as ECT's loader does (ect/training/ct_training_loop.py:192,
// require_all=False). Returns the dropped tensors as "name [shape]"; anything else that differs throws one line
// naming the tensors. `where` names the source in messages.
std::vector<std::string> copy_init_weights(Denoiser& target, Denoiser& source, const std::string& where);

// Multiply-accumulates of one forward pass on one sample, counted from the layers (x2 for FLOPs).
int64_t forward_macs(Denoiser& model);

}  // namespace onestep
