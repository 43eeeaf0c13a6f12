#include "trainer/trainer.h"

#include "core/error.h"
#include "core/progress.h"
#include "core/random.h"
#include "distributed/communicator.h"
#include "distributed/gradient_averager.h"
#include "data/formats.h"
#include "io/atomic_file.h"
#include "io/image_io.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/tensorboard.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace onestep {

namespace fs = std::filesystem;

torch::Device resolve_device(const std::string& device) {
  if (device == "cpu") return torch::kCPU;
  if (device == "cuda") {
    require(torch::cuda::is_available(), "train.device = \"cuda\" but no CUDA device is available");
    return torch::Device(torch::kCUDA, 0);
  }
  require(device == "auto", "train.device: unknown device '", device, "' (choices: auto, cpu, cuda)");
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

fs::path checkpoint_path(const fs::path& checkpoints_dir, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "ckpt-%08lld.safetensors", static_cast<long long>(step));
  return checkpoints_dir / name;
}

void set_cuda_tf32(bool allow) {
  const at::Float32Precision precision = allow ? at::Float32Precision::TF32 : at::Float32Precision::IEEE;
  at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV, precision);
  at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL, precision);
}

void set_deterministic_algorithms(bool on) {
  if (on) ::setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicCuDNN(on);
  if (on) at::globalContext().setBenchmarkCuDNN(false);
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/true);
}

namespace {

// bf16 autocast on CUDA, fp32 master weights; a no-op elsewhere.
class AutocastScope {
 public:
  explicit AutocastScope(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, false);
  }

 private:
  bool enabled_;
};

// train.channels_last: the 4-D weights (convolutions) in NHWC. Autograd gives their gradients the same layout and
// the optimizer's zeros_like moments follow; safetensors writes contiguous NCHW, copy_ reads any layout back.
void use_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
}

// Samples written into the grids are comparable across steps: fixed latents from the seed.
torch::Tensor fixed_latents(int64_t count, const std::vector<int64_t>& shape, int64_t seed) {
  auto generator = make_generator(torch::kCPU, static_cast<uint64_t>(seed) + 0x5eed);
  std::vector<int64_t> full{count};
  full.insert(full.end(), shape.begin(), shape.end());
  return random_normal(full, generator, torch::kCPU, torch::kFloat32, "sample-grid latents");
}

// One process per GPU: a data-parallel rank trains on cuda:<local rank>.
torch::Device training_device(const std::string& device, const Communicator* communicator) {
  torch::Device resolved = resolve_device(device);
  if (communicator == nullptr || !resolved.is_cuda()) return resolved;
  require(communicator->local_rank() < static_cast<int>(torch::cuda::device_count()), "LOCAL_RANK ",
          communicator->local_rank(), " but this machine has ", torch::cuda::device_count(), " CUDA device(s)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(communicator->local_rank()));
}

// The default generator of `device`, which dropout draws from.
at::Generator default_generator(const torch::Device& device) {
  return device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
}

// The slice's statistics from those of its micro-batches: floating-point values (means over the rows, as every
// objective logs) weighted by each micro-batch's share of the slice; others (the curriculum's N, ECT's stage)
// are the same in every micro-batch and taken from the first.
void accumulate_stats(Json& total, const Json& part, double share) {
  if (!part.is_object()) return;
  if (!total.is_object()) total = Json::object();
  for (const auto& [key, value] : part.items()) {
    if (value.is_number_float())
      total[key] = (total.contains(key) ? total[key].get<double>() : 0.0) + value.get<double>() * share;
    else if (!total.contains(key))
      total[key] = value;
  }
}

}  // namespace

Trainer::Trainer(RunDir& run, Json effective_config, TrainConfig train, std::optional<SamplerConfig> sample,
                 Denoiser model, std::unique_ptr<Objective> objective, std::shared_ptr<const Dataset> data,
                 std::shared_ptr<Communicator> communicator)
    : run_(run),
      config_(std::move(effective_config)),
      train_(std::move(train)),
      sample_(std::move(sample)),
      device_(training_device(train_.device, communicator.get())),
      model_(std::move(model)),
      objective_(std::move(objective)),
      data_(std::move(data)),
      generator_(make_generator(device_, static_cast<uint64_t>(train_.seed))),
      communicator_(std::move(communicator)) {
  require(objective_ != nullptr, "trainer: no objective");
  model_->set_trained_with(objective_->name());  // saved with every checkpoint and EMA (the sampler's re-noising)
  require(data_ != nullptr && data_->size() > 0, "trainer: the dataset is empty");
  const int world = communicator_ ? communicator_->world_size() : 1;
  require(train_.batch % world == 0, "train.batch = ", train_.batch, " (the global batch) is not divisible by the ",
          world, " processes of this run");
  if (is_main()) {
    metrics_ = std::make_unique<MetricsLog>(run.metrics_path());
    events_ = std::make_unique<EventWriter>(run.root());
  }
  set_cuda_tf32(train_.tf32);
  at::globalContext().setBenchmarkCuDNN(train_.cudnn_benchmark);  // process-wide: every trainer sets it
  if (train_.deterministic) set_deterministic_algorithms(true);
  if (train_.bf16 && !device_.is_cuda())
    std::fprintf(stderr, "onestep: warning: train.bf16 needs CUDA; training in fp32 on %s\n",
                 device_.str().c_str());
  model_->to(device_);
  model_->train();
  if (communicator_) {
    // Every rank starts from rank 0's weights (the same seed gives the same ones; --init reads the same file).
    std::vector<torch::Tensor> state;
    for (const auto& [name, t] : named_weights(model_)) state.push_back(t);
    communicator_->broadcast(state, "broadcast of the initial weights");
  }
  if (train_.channels_last) use_channels_last(*model_);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : model_->named_parameters())
    if (item.value().requires_grad()) params.emplace_back(item.key(), item.value());
  if (communicator_) {
    std::vector<torch::Tensor> trainable;
    for (auto& [name, p] : params) trainable.push_back(p);
    averager_ = std::make_unique<GradientAverager>(communicator_, std::move(trainable));
  }
  optimizer_ = make_optimizer(train_.optimizer, std::move(params), train_.hyper);
  for (const EmaRule& rule : train_.ema_rules()) {
    emas_.emplace_back(rule, model_);
    if (train_.channels_last) use_channels_last(*emas_.back().model());
  }
  const int64_t per_rank = train_.batch / world;
  // A cap above the slice (a run resumed with more processes than it was configured for) runs the slice in one
  // piece, as EDM's training loop clamps batch_gpu to batch_gpu_total.
  micro_batch_ = train_.batch_per_gpu > 0 && train_.batch_per_gpu < per_rank ? train_.batch_per_gpu : 0;
  const BatchSlice slice{communicator_ ? communicator_->rank() * per_rank : 0, per_rank};
  loader_ = std::make_unique<BatchLoader>(data_, train_.batch, static_cast<uint64_t>(train_.seed),
                                          config_.contains("data") && config_["data"].value("flip", false),
                                          /*prefetch=*/2, slice);
  if (is_main()) fs::create_directories(run_.checkpoints());
}

Trainer::~Trainer() = default;

bool Trainer::is_main() const { return communicator_ == nullptr || communicator_->is_main(); }

std::vector<std::pair<std::string, torch::Tensor>> Trainer::named_weights(Denoiser& model) const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model->named_parameters()) out.emplace_back(item.key(), item.value().detach());
  for (const auto& item : model->named_buffers()) out.emplace_back(item.key(), item.value());
  return out;
}

Trainer::StepResult Trainer::forward_backward(const Batch& batch) {
  StepResult result;
  const TrainProgress progress{step_, train_.steps, images_seen_};
  for (auto& p : model_->parameters()) p.mutable_grad() = torch::Tensor();

  // Ranks other than 0 draw their dropout masks from a stream of their own per step (rank 0's is the
  // checkpointed default generator), so that the ranks' masks are independent and resume exactly.
  std::optional<at::Generator> dropout_generator;
  torch::Tensor dropout_state;
  if (communicator_ && communicator_->rank() > 0) {
    dropout_generator = default_generator(device_);
    std::lock_guard<std::mutex> lock(dropout_generator->mutex());
    dropout_state = dropout_generator->get_state();
    dropout_generator->set_current_seed(
        mix_seed(mix_seed(static_cast<uint64_t>(train_.seed) ^ 0xD15Bull, static_cast<uint64_t>(step_)),
                 static_cast<uint64_t>(communicator_->rank())));
  }
  // Gradient accumulation (train.batch_per_gpu): the slice runs in micro-batches of at most micro_batch_ rows.
  // Each micro-batch keeps its place in the global batch (Batch::rows) and starts from the same objective
  // generator state, so that it draws the global batch's per-sample values and keeps its own rows: the draws of
  // every sample, and the generator state after the step, do not depend on batch_per_gpu. Its mean loss is
  // weighted by its share of the slice (as EDM's training loop scales each round's loss by 1 / batch_gpu_total),
  // so the accumulated gradient is the slice's mean gradient. The earlier micro-batches' backward accumulates
  // locally; only the last one's feeds the gradient average, which adds what .grad already holds. (One exception:
  // objective.target_estimate = "batch_posterior" averages over the rows of one forward pass, docs/distributed.md.)
  const int64_t rows = batch.x.size(0);
  const int64_t micro = micro_batch_ > 0 ? std::min(micro_batch_, rows) : rows;
  const int64_t rounds = (rows + micro - 1) / micro;
  const torch::Tensor objective_start = rounds > 1 ? generator_state(generator_) : torch::Tensor();
  torch::Tensor local_loss, last_loss;  // local_loss: the slice's mean loss (float64, detached)
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t start = round * micro, count = std::min(micro, rows - start);
    if (round > 0) set_generator_state(generator_, objective_start, "rng.objective");
    LossOutput out;
    {
      AutocastScope autocast(train_.bf16 && device_.is_cuda());
      out = objective_->compute_loss(model_, rounds > 1 ? batch.rows(start, count) : batch, progress, generator_);
    }
    if (rounds == 1) {
      result.stats = out.stats;
      local_loss = out.loss.detach().to(torch::kFloat64);
      last_loss = out.loss;
      break;
    }
    const double share = static_cast<double>(count) / static_cast<double>(rows);
    accumulate_stats(result.stats, out.stats, share);
    const torch::Tensor weighted = out.loss.detach().to(torch::kFloat64) * share;
    local_loss = round == 0 ? weighted : local_loss + weighted;
    if (round + 1 < rounds) {
      (out.loss * share).backward();  // frees this micro-batch's activations
    } else {
      last_loss = out.loss * share;
    }
  }
  if (communicator_) {
    // The loss of the global batch: the mean of the ranks' (equal-sized) slices. Every rank then skips a
    // non-finite step together.
    torch::Tensor loss = local_loss.reshape({1}).clone();
    communicator_->sum(loss, "loss all-reduce");
    result.loss = loss.item<double>() / communicator_->world_size();
  } else {
    result.loss = local_loss.item<double>();
  }
  result.finite = std::isfinite(result.loss);
  if (result.finite) {
    if (averager_) averager_->begin();
    last_loss.backward();
    if (averager_) averager_->finish();
  }
  if (dropout_generator) {
    std::lock_guard<std::mutex> lock(dropout_generator->mutex());
    dropout_generator->set_state(dropout_state);
  }
  return result;
}

std::vector<std::pair<std::string, torch::Tensor>> Trainer::next_batch_gradients() {
  const Batch batch = next_batch_on_device();
  const StepResult r = forward_backward(batch);
  require(r.finite, "next_batch_gradients: the loss is not finite");
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : model_->named_parameters())
    if (item.value().grad().defined()) out.emplace_back(item.key(), item.value().grad().clone());
  return out;
}

Batch Trainer::next_batch_on_device() {
  Batch batch = loader_->next();
  batch.x = batch.x.to(device_);
  if (train_.channels_last && batch.x.dim() == 4) batch.x = batch.x.contiguous(at::MemoryFormat::ChannelsLast);
  if (batch.labels.defined()) batch.labels = batch.labels.to(device_);
  return batch;
}

Trainer::StepResult Trainer::train_step(bool want_grad_norm) {
  const Batch batch = next_batch_on_device();
  StepResult result = forward_backward(batch);
  if (!result.finite) return result;  // skipped: no backward, no optimizer or EMA update

  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (auto& p : model_->parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  if (train_.grad_nan_to_num)  // as EDM's and ECT's loops: nan -> 0, +-inf -> +-1e5 (docs/methods.md sections 3, 7)
    for (auto& g : grads) g.nan_to_num_(0.0, 1e5, -1e5);
  // The global norm costs a host synchronisation (.item()): only where clipping needs it or a log line shows it.
  if (!grads.empty() && (train_.grad_clip > 0 || want_grad_norm)) {
    auto norms = at::_foreach_norm(grads, 2);
    result.grad_norm = torch::stack(norms).to(torch::kFloat64).norm().item<double>();
    if (train_.grad_clip > 0 && result.grad_norm > train_.grad_clip) {
      // as torch.nn.utils.clip_grad_norm_
      at::_foreach_mul_(grads, train_.grad_clip / (result.grad_norm + 1e-6));
    }
  }
  result.lr = train_.lr * train_.lr_factor(step_, images_seen_);
  optimizer_->step(result.lr);
  const int64_t global_batch = batch.global_batch();  // EMA half-lives and images_seen count the global batch
  for (Ema& ema : emas_) ema.update(model_, global_batch, images_seen_);
  images_seen_ += global_batch;
  ++step_;
  objective_->after_step(model_, TrainProgress{step_, train_.steps, images_seen_});
  return result;
}

void Trainer::train(int64_t until_step) {
  if (until_step < 0) until_step = train_.steps;
  std::unique_ptr<Progress> bar;
  if (!quiet_ && is_main()) {
    bar = std::make_unique<Progress>("train", until_step, "it");
    bar->resume_at(step_);
  }
  using clock = std::chrono::steady_clock;
  const auto session_start = clock::now();  // wall_s of the metrics lines counts from here (per invocation)
  auto interval_start = clock::now();
  int64_t interval_images = 0, interval_steps = 0;
  double interval_loss = 0;

  while (step_ < until_step) {
    const int64_t next = step_ + 1;
    const bool logs_next = next % train_.log_every == 0 || next == until_step ||
                           (eval_hook_ && eval_every_ > 0 && next % eval_every_ == 0);
    StepResult r = train_step(/*want_grad_norm=*/logs_next);
    if (!r.finite) {
      ++nonfinite_streak_;
      Json record{{"step", step_}, {"nonfinite_loss", true}, {"streak", nonfinite_streak_}};
      if (metrics_) metrics_->write(record);
      if (nonfinite_streak_ >= train_.max_nonfinite) {
        const std::string last =
            last_checkpoint_step_ >= 0 ? checkpoint_path(run_.checkpoints(), last_checkpoint_step_).string()
                                       : std::string("none written yet");
        fail("training stopped at step ", step_, ": ", nonfinite_streak_,
             " consecutive non-finite losses (train.max_nonfinite = ", train_.max_nonfinite,
             "); last good checkpoint: ", last);
      }
      continue;
    }
    nonfinite_streak_ = 0;
    interval_loss += r.loss;
    interval_images += train_.batch;
    ++interval_steps;

    const bool log_now = step_ % train_.log_every == 0 || step_ == until_step;
    const bool eval_now = eval_hook_ && eval_every_ > 0 && step_ % eval_every_ == 0 && is_main();
    if (log_now || eval_now) {
      const double seconds = std::chrono::duration<double>(clock::now() - interval_start).count();
      Json record{{"step", step_},
                  {"loss", interval_loss / std::max<int64_t>(interval_steps, 1)},
                  {"lr", r.lr},
                  {"grad_norm", r.grad_norm},
                  {"images_seen", images_seen_},
                  {"images_per_s", seconds > 0 ? interval_images / seconds : 0.0},
                  {"wall_s", std::chrono::duration<double>(clock::now() - session_start).count()},
                  {"time", std::chrono::duration<double>(
                               std::chrono::system_clock::now().time_since_epoch()).count()}};
      if (r.stats.is_object()) record.update(r.stats);
      if (eval_now) {
        Denoiser& target = emas_.empty() ? model_ : emas_.front().model();
        Json result = eval_hook_(target, step_);
        if (result.is_object()) record.update(result);
        model_->train();
      }
      if (metrics_) metrics_->write(record);
      if (events_) events_->write_metrics(record);
      if (bar) bar->update(step_, {{"loss", record["loss"].get<double>()}});
      interval_start = clock::now();
      interval_images = interval_steps = 0;
      interval_loss = 0;
    }
    if (train_.checkpoint_every > 0 && step_ % train_.checkpoint_every == 0) save_checkpoint();
    if (sample_ && train_.sample_every > 0 && step_ % train_.sample_every == 0 && is_main()) write_samples();
  }
  if (bar) bar->finish();
  if (checkpoint_at_end_ && last_checkpoint_step_ != step_) save_checkpoint();
  if (sample_ && train_.sample_every >= 0 && (train_.sample_every == 0 || step_ % train_.sample_every != 0) &&
      is_main())
    write_samples();
}

void Trainer::write_samples() {
  Denoiser& target = emas_.empty() ? model_ : emas_.front().model();
  const auto shape = target->sample_shape();
  const torch::Tensor latents = fixed_latents(train_.sample_count, shape, train_.seed).to(device_);
  // Fresh noise of multistep samplers from its own generator, so that sampling never disturbs training.
  auto generator = make_generator(device_, static_cast<uint64_t>(train_.seed) + 1);
  torch::Tensor labels;
  if (target->label_dim() > 0)
    labels = torch::arange(train_.sample_count, torch::kInt64).remainder(target->label_dim()).to(device_);
  torch::Tensor x = run_sampler(target, *sample_, latents, generator, labels).cpu();
  if (x.dim() == 2) x = target->point_scaling().to_user(x);  // points in the data's own units
  model_->train();
  fs::create_directories(run_.samples());
  char name[64];
  if (x.dim() == 4) {
    std::snprintf(name, sizeof name, "step-%08lld.png", static_cast<long long>(step_));
    write_png_grid(run_.samples() / name, float_to_images(x));
    if (events_) events_->write_png(step_, "samples", read_file_bytes(run_.samples() / name));
  } else {
    std::snprintf(name, sizeof name, "step-%08lld.npy", static_cast<long long>(step_));
    write_npy(run_.samples() / name, x.to(torch::kFloat32).contiguous());
    if (events_ && x.dim() == 2 && x.size(1) == 2)
      events_->write_png(step_, "samples", encode_png(points_density_image(x.to(torch::kFloat32))));
  }
}

fs::path Trainer::save_checkpoint() {
  const fs::path path = checkpoint_path(run_.checkpoints(), step_);
  last_checkpoint_step_ = step_;
  if (!is_main()) return path;
  std::vector<std::pair<std::string, torch::Tensor>> tensors = named_weights(model_);
  for (Ema& ema : emas_)
    for (auto& [name, t] : named_weights(ema.model())) tensors.emplace_back("ema." + ema.name() + "." + name, t);
  for (auto& [name, t] : optimizer_->state_tensors()) tensors.emplace_back("optim." + name, t);
  for (auto& [name, t] : objective_->state_tensors()) tensors.emplace_back("objective." + name, t);
  tensors.emplace_back("rng.cpu", generator_state(at::detail::getDefaultCPUGenerator()));
  tensors.emplace_back("rng.objective", generator_state(generator_));
  if (torch::cuda::is_available())
    tensors.emplace_back("rng.cuda", generator_state(at::globalContext().defaultGenerator(
                                         at::Device(at::kCUDA, device_.is_cuda() ? device_.index() : 0))));

  Json ema_names = Json::array();
  for (Ema& ema : emas_) ema_names.push_back(ema.name());
  Json state{{"step", step_},
             {"images_seen", images_seen_},
             {"nonfinite_streak", nonfinite_streak_},
             {"loader", loader_->state().to_json()},
             {"optimizer", optimizer_->name()},
             {"objective", objective_->name()},
             {"emas", ema_names}};
  if (communicator_) state["world_size"] = communicator_->world_size();  // informative: any world size resumes
  std::map<std::string, std::string> metadata;
  metadata["format"] = "pt";
  // Exactly what save_model writes, so that load_model(path, "ema.<name>.") reads a training checkpoint.
  metadata["onestep"] = model_->description().dump();
  metadata["onestep_train"] = state.dump();
  metadata["onestep_config"] = config_.dump();

  save_safetensors(path, tensors, metadata);
  write_text_atomically(run_.checkpoints() / "latest", path.filename().string() + "\n");

  // Keep the newest train.keep_checkpoints files.
  std::vector<fs::path> existing;
  for (const auto& entry : fs::directory_iterator(run_.checkpoints())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && entry.path().extension() == ".safetensors") existing.push_back(entry.path());
  }
  std::sort(existing.begin(), existing.end());
  while (static_cast<int64_t>(existing.size()) > train_.keep_checkpoints) {
    if (existing.front() != path) fs::remove(existing.front());
    existing.erase(existing.begin());
  }
  return path;
}

fs::path Trainer::latest_checkpoint() const {
  const fs::path pointer = run_.checkpoints() / "latest";
  require(fs::exists(pointer), "run '", run_.root().string(), "' has no checkpoint to resume from (no ",
          pointer.string(), ")");
  return follow_checkpoint_pointer(pointer);
}

void Trainer::load_checkpoint(const fs::path& checkpoint) {
  const SafetensorsContent content = load_safetensors(checkpoint);
  const std::string where = "checkpoint '" + checkpoint.string() + "'";
  auto meta = content.metadata.find("onestep_train");
  require(meta != content.metadata.end(), where, ": not a training checkpoint (no 'onestep_train' metadata)");
  Json state;
  try {
    state = Json::parse(meta->second);
  } catch (const Json::exception& e) {
    fail(where, ": 'onestep_train' metadata is not valid JSON (", e.what(), ")");
  }
  // The run's points must still be scaled as when the checkpoint was written (data.normalize, the data file).
  PointScaling stored;
  if (auto description = content.metadata.find("onestep"); description != content.metadata.end()) {
    const Json j = Json::parse(description->second, nullptr, false);
    if (j.is_object() && j.contains("point_scaling")) stored = PointScaling::from_json(j["point_scaling"], where);
  }
  require(stored.same_as(model_->point_scaling()), where, ": written for points scaled as ", stored.describe(),
          " but the run's data now gives ", model_->point_scaling().describe(),
          " (the data or data.normalize changed)");
  try {
    torch::NoGradGuard no_grad;
    auto assign = [&](Denoiser& model, const std::string& prefix) {
      for (auto& [name, target] : named_weights(model)) {
        const torch::Tensor* source = content.find(prefix + name);
        require(source != nullptr, "missing tensor '", prefix + name, "'");
        require(source->sizes() == target.sizes(), "tensor '", prefix + name, "' has shape ", source->sizes(),
                ", the model expects ", target.sizes());
        target.copy_(*source);
      }
    };
    assign(model_, "");
    for (Ema& ema : emas_) assign(ema.model(), "ema." + ema.name() + ".");
    require(state.value("optimizer", std::string()) == optimizer_->name(), "written with optimizer '",
            state.value("optimizer", std::string()), "', the configuration asks for '", optimizer_->name(), "'");
    optimizer_->load_state_tensors([&](const std::string& name) { return content.find("optim." + name); });
    std::vector<std::pair<std::string, torch::Tensor>> objective_state;
    for (const auto& [name, t] : content.tensors)
      if (name.rfind("objective.", 0) == 0) objective_state.emplace_back(name.substr(10), t.to(device_));
    objective_->load_state_tensors(objective_state);

    step_ = state.at("step").get<int64_t>();
    images_seen_ = state.at("images_seen").get<int64_t>();
    nonfinite_streak_ = state.value("nonfinite_streak", int64_t{0});
    loader_->restore(LoaderState::from_json(state.at("loader")));

    const torch::Tensor* cpu = content.find("rng.cpu");
    const torch::Tensor* obj = content.find("rng.objective");
    require(cpu && obj, "missing random states 'rng.cpu' / 'rng.objective'");
    at::Generator default_cpu = at::detail::getDefaultCPUGenerator();
    set_generator_state(default_cpu, *cpu, "rng.cpu");
    set_generator_state(generator_, *obj, "rng.objective");
    if (const torch::Tensor* cuda = content.find("rng.cuda"); cuda && torch::cuda::is_available()) {
      at::Generator default_cuda =
          at::globalContext().defaultGenerator(at::Device(at::kCUDA, device_.is_cuda() ? device_.index() : 0));
      set_generator_state(default_cuda, *cuda, "rng.cuda");
    }
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  } catch (const Json::exception& e) {
    fail(where, ": malformed training state (", e.what(), ")");
  }
  last_checkpoint_step_ = step_;
  // The resumed session logs from step_ + 1 on: TensorBoard drops the events of those steps (and later) that the
  // interrupted session wrote after this checkpoint, keeping the checkpoint's own step.
  if (events_) events_->write_session_start(step_ + 1);
  // The steps after the checkpoint run again: their records of the interrupted run go, so each step is logged once.
  if (metrics_) metrics_->truncate_after_step(step_);
}

}  // namespace onestep
