#include "io/checkpoint_layout.h"

#include <cstdio>

namespace onestep::checkpoint_layout {

namespace {

bool starts_with(const std::string& text, const char* prefix) { return text.rfind(prefix, 0) == 0; }

}  // namespace

std::string ema_prefix(const std::string& ema_name) { return std::string(kEmaPrefix) + ema_name + "."; }

bool is_training_state_tensor(const std::string& tensor_name) {
  for (const char* prefix : {kEmaPrefix, kOptimizerPrefix, kObjectivePrefix, kRngPrefix})
    if (starts_with(tensor_name, prefix)) return true;
  return false;
}

bool in_weight_set(const std::string& tensor_name, const std::string& prefix) {
  if (prefix.empty()) return !is_training_state_tensor(tensor_name);
  return tensor_name.rfind(prefix, 0) == 0;
}

std::vector<std::string> ema_names(const Json& train_state) {
  std::vector<std::string> names;
  if (!train_state.is_object() || !train_state.contains(kStateEmas) || !train_state[kStateEmas].is_array())
    return names;
  for (const auto& name : train_state[kStateEmas])
    if (name.is_string()) names.push_back(name.get<std::string>());
  return names;
}

std::filesystem::path checkpoint_path(const std::filesystem::path& checkpoints_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-%08lld.safetensors", static_cast<long long>(step));
  return checkpoints_dir / name;
}

namespace {
constexpr const char* kCheckpointPrefix = "ckpt-";  // checkpoint_path's format spells both
constexpr const char* kCheckpointSuffix = ".safetensors";
}  // namespace

bool is_checkpoint_file_name(const std::string& file_name) {
  const std::string prefix = kCheckpointPrefix, suffix = kCheckpointSuffix;
  return starts_with(file_name, kCheckpointPrefix) && file_name.size() > prefix.size() + suffix.size() &&
         file_name.compare(file_name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::optional<int64_t> checkpoint_step(const std::string& file_name) {
  if (!is_checkpoint_file_name(file_name)) return std::nullopt;
  const std::string prefix = kCheckpointPrefix, suffix = kCheckpointSuffix;
  const std::string digits = file_name.substr(prefix.size(), file_name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(digits);
}

}  // namespace onestep::checkpoint_layout
