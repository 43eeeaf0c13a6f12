#include "trainer/checkpoints.h"

#include "core/error.h"
#include "core/random.h"
#include "io/atomic_file.h"
#include "io/checkpoint_layout.h"
#include "io/safetensors.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/cuda.h>

#include <algorithm>
#include <map>

namespace onestep {

namespace fs = std::filesystem;
namespace layout = checkpoint_layout;

namespace {

// The CUDA generator whose state a checkpoint keeps: the training GPU's (cuda:0 for a CPU run on a CUDA machine).
at::Generator cuda_generator(const torch::Device& device) {
  return at::globalContext().defaultGenerator(at::Device(at::kCUDA, device.is_cuda() ? device.index() : 0));
}

std::vector<std::pair<std::string, torch::Tensor>> state_tensors(TrainingState& state) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors = model_state(state.model);
  for (Ema& ema : state.emas)
    for (auto& [name, t] : model_state(ema.model())) tensors.emplace_back(layout::ema_prefix(ema.name()) + name, t);
  for (auto& [name, t] : state.optimizer.state_tensors()) tensors.emplace_back(layout::kOptimizerPrefix + name, t);
  for (auto& [name, t] : state.objective.state_tensors()) tensors.emplace_back(layout::kObjectivePrefix + name, t);
  tensors.emplace_back(layout::kRngCpu, generator_state(at::detail::getDefaultCPUGenerator()));
  tensors.emplace_back(layout::kRngObjective, generator_state(state.objective_generator));
  if (torch::cuda::is_available())
    tensors.emplace_back(layout::kRngCuda, generator_state(cuda_generator(state.device)));
  return tensors;
}

Json counters_json(TrainingState& state, int world_size) {
  Json ema_names = Json::array();
  for (Ema& ema : state.emas) ema_names.push_back(ema.name());
  Json json{{"step", state.counters.step},
            {"images_seen", state.counters.images_seen},
            {"nonfinite_streak", state.counters.nonfinite_streak},
            {"loader", state.loader.state().to_json()},
            {"optimizer", state.optimizer.name()},
            {layout::kStateObjective, state.objective.name()},
            {layout::kStateEmas, ema_names}};
  if (world_size > 0) json["world_size"] = world_size;  // informative: any world size resumes
  return json;
}

Json train_state_of(const SafetensorsContent& content, const std::string& where) {
  auto meta = content.metadata.find(layout::kTrainStateKey);
  require(meta != content.metadata.end(), where, ": not a training checkpoint (no 'onestep_train' metadata)");
  try {
    return Json::parse(meta->second);
  } catch (const Json::exception& e) {
    fail(where, ": 'onestep_train' metadata is not valid JSON (", e.what(), ")");
  }
}

// The run's points must still be scaled as when the checkpoint was written (data.normalize, the data file).
void check_point_scaling(const SafetensorsContent& content, Denoiser& model, const std::string& where) {
  PointScaling stored;
  if (auto description = content.metadata.find(layout::kModelKey); description != content.metadata.end()) {
    const Json j = Json::parse(description->second, nullptr, false);
    if (j.is_object() && j.contains("point_scaling")) stored = PointScaling::from_json(j["point_scaling"], where);
  }
  require(stored.same_as(model->point_scaling()), where, ": written for points scaled as ", stored.describe(),
          " but the run's data now gives ", model->point_scaling().describe(), " (the data or data.normalize changed)");
}

void assign_weights(const SafetensorsContent& content, Denoiser& model, const std::string& prefix) {
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : model_state(model)) {
    const torch::Tensor* source = content.find(prefix + name);
    require(source != nullptr, "missing tensor '", prefix + name, "'");
    require(source->sizes() == target.sizes(), "tensor '", prefix + name, "' has shape ", source->sizes(),
            ", the model expects ", target.sizes());
    target.copy_(*source);
  }
}

void restore_objective(const SafetensorsContent& content, TrainingState& state) {
  const std::string prefix = layout::kObjectivePrefix;
  std::vector<std::pair<std::string, torch::Tensor>> objective_state;
  for (const auto& [name, t] : content.tensors)
    if (name.rfind(prefix, 0) == 0) objective_state.emplace_back(name.substr(prefix.size()), t.to(state.device));
  state.objective.load_state_tensors(objective_state);
}

void restore_generators(const SafetensorsContent& content, TrainingState& state) {
  const torch::Tensor* cpu = content.find(layout::kRngCpu);
  const torch::Tensor* objective = content.find(layout::kRngObjective);
  require(cpu && objective, "missing random states '", layout::kRngCpu, "' / '", layout::kRngObjective, "'");
  at::Generator default_cpu = at::detail::getDefaultCPUGenerator();
  set_generator_state(default_cpu, *cpu, layout::kRngCpu);
  set_generator_state(state.objective_generator, *objective, layout::kRngObjective);
  if (const torch::Tensor* cuda = content.find(layout::kRngCuda); cuda && torch::cuda::is_available()) {
    at::Generator default_cuda = cuda_generator(state.device);
    set_generator_state(default_cuda, *cuda, layout::kRngCuda);
  }
}

}  // namespace

TrainingCheckpoints::TrainingCheckpoints(RunDir& run, int64_t keep, Json config)
    : run_(run), keep_(keep), config_(std::move(config)) {}

fs::path TrainingCheckpoints::write(TrainingState& state, int world_size) {
  const fs::path path = layout::checkpoint_path(run_.checkpoints(), state.counters.step);
  std::map<std::string, std::string> metadata;
  metadata[layout::kFormatKey] = layout::kFormatValue;
  // Exactly what save_model writes, so that load_model(path, "<EMA name>") reads a training checkpoint.
  metadata[layout::kModelKey] = state.model->description().dump();
  metadata[layout::kTrainStateKey] = counters_json(state, world_size).dump();
  metadata[layout::kRunConfigKey] = config_.dump();
  save_safetensors(path, state_tensors(state), metadata);
  write_text_atomically(run_.latest_pointer(), path.filename().string() + "\n");
  remove_old(path);
  return path;
}

void TrainingCheckpoints::remove_old(const fs::path& keep_this) {
  std::vector<fs::path> existing;
  for (const auto& entry : fs::directory_iterator(run_.checkpoints()))
    if (layout::is_checkpoint_file_name(entry.path().filename().string())) existing.push_back(entry.path());
  std::sort(existing.begin(), existing.end());
  while (static_cast<int64_t>(existing.size()) > keep_) {
    if (existing.front() != keep_this) fs::remove(existing.front());
    existing.erase(existing.begin());
  }
}

fs::path TrainingCheckpoints::latest() const {
  const fs::path pointer = run_.latest_pointer();
  require(fs::exists(pointer), "run '", run_.root().string(), "' has no checkpoint to resume from (no ",
          pointer.string(), ")");
  return follow_checkpoint_pointer(pointer);
}

void TrainingCheckpoints::read(const fs::path& path, TrainingState& state) const {
  const SafetensorsContent content = load_safetensors(path);
  const std::string where = "checkpoint '" + path.string() + "'";
  const Json train_state = train_state_of(content, where);
  check_point_scaling(content, state.model, where);
  try {
    assign_weights(content, state.model, "");
    for (Ema& ema : state.emas) assign_weights(content, ema.model(), layout::ema_prefix(ema.name()));
    const std::string optimizer = train_state.value("optimizer", std::string());
    require(optimizer == state.optimizer.name(), "written with optimizer '", optimizer,
            "', the configuration asks for '", state.optimizer.name(), "'");
    state.optimizer.load_state_tensors(
        [&](const std::string& name) { return content.find(layout::kOptimizerPrefix + name); });
    restore_objective(content, state);
    state.counters.step = train_state.at("step").get<int64_t>();
    state.counters.images_seen = train_state.at("images_seen").get<int64_t>();
    state.counters.nonfinite_streak = train_state.value("nonfinite_streak", int64_t{0});
    state.loader.restore(LoaderState::from_json(train_state.at("loader")));
    restore_generators(content, state);
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  } catch (const Json::exception& e) {
    fail(where, ": malformed training state (", e.what(), ")");
  }
}

}  // namespace onestep
