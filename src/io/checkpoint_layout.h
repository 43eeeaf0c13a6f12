#pragma once
// The one description of what a onestep .safetensors file holds, shared by its writers (the trainer's checkpoints,
// save_model) and its readers (the trainer's resume, load_model's weight-set choice), so that a prefix added on one
// side cannot be missed on the other.
//
// A model file holds one weight set: the Denoiser's parameters and buffers under their module names ("model.*").
// A training checkpoint holds, beside those raw weights,
//   ema.<name>.model.*   each EMA's weights (train.ema), a complete weight set of its own
//   optim.*              the optimizer's moments
//   objective.*          the objective's state (original CT's EMA teacher: objective.teacher.model.*)
//   rng.cpu, rng.objective, rng.cuda   the random generators' states
// and the metadata "onestep_train" (the training state, a JSON object) next to the "onestep" model description.
#include "config/config.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace onestep::checkpoint_layout {

// Tensor name prefixes of a training checkpoint.
inline constexpr const char* kEmaPrefix = "ema.";
inline constexpr const char* kOptimizerPrefix = "optim.";
inline constexpr const char* kObjectivePrefix = "objective.";
inline constexpr const char* kRngPrefix = "rng.";
inline constexpr const char* kRngCpu = "rng.cpu";
inline constexpr const char* kRngObjective = "rng.objective";
inline constexpr const char* kRngCuda = "rng.cuda";

// Metadata names (safetensors "__metadata__" strings).
inline constexpr const char* kFormatKey = "format";  // "pt", as torch's safetensors writer
inline constexpr const char* kFormatValue = "pt";
inline constexpr const char* kModelKey = "onestep";          // the model description (precond/model.h)
inline constexpr const char* kTrainStateKey = "onestep_train";  // training checkpoints only
inline constexpr const char* kRunConfigKey = "onestep_config";  // the run's effective configuration
inline constexpr const char* kModelWeightsKey = "onestep_weights";  // model files: which weight set they hold

// Keys of the "onestep_train" object that readers other than the trainer use.
inline constexpr const char* kStateEmas = "emas";            // the EMA names, in train.ema order
inline constexpr const char* kStateObjective = "objective";  // the objective's name (the method)

// The weight set name of the raw (trained) weights, beside the EMA names.
inline constexpr const char* kRawWeights = "raw";

// "ema.<name>." : the prefix of one EMA's weight set.
std::string ema_prefix(const std::string& ema_name);
// True for a tensor of a training checkpoint that is none of the raw weights: an EMA's, the optimizer's, the
// objective's or a random state.
bool is_training_state_tensor(const std::string& tensor_name);
// Whether `tensor_name` belongs to the weight set whose prefix is `prefix` ("" = the raw weights, which exclude
// every training-state tensor; "ema.<name>." = that EMA's).
bool in_weight_set(const std::string& tensor_name, const std::string& prefix);

// The EMA names a training state lists (empty when it lists none or is malformed).
std::vector<std::string> ema_names(const Json& train_state);

// The files of a run directory that hold weights: <run>/model.safetensors (the model the finished run exports) and
// <run>/checkpoints/ckpt-<step, 8 digits>.safetensors; the `latest` pointer file beside the checkpoints names the
// newest.
inline constexpr const char* kRunModelFile = "model.safetensors";
inline constexpr const char* kCheckpointsDir = "checkpoints";
inline constexpr const char* kLatestPointer = "latest";
std::filesystem::path checkpoint_path(const std::filesystem::path& checkpoints_dir, int64_t step);
// True for a file name the trainer writes as a checkpoint ("ckpt-*.safetensors").
bool is_checkpoint_file_name(const std::string& file_name);
// The step of a checkpoint file name ("ckpt-00001500.safetensors" -> 1500); nullopt for any other name.
std::optional<int64_t> checkpoint_step(const std::string& file_name);

}  // namespace onestep::checkpoint_layout
