#include "trainer/trainer.h"
#include "trainer/phema.h"

#include "core/device.h"
#include "core/error.h"
#include "core/random.h"
#include "io/checkpoint_layout.h"
#include "trainer/sample_grid.h"

#include <ATen/autocast_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace onestep {

namespace fs = std::filesystem;

namespace {

// bf16 autocast of the forward passes (CUDA, or a CPU with native bf16), fp32 master weights.
class AutocastScope {
 public:
  AutocastScope(bool enabled, at::DeviceType type) : enabled_(enabled), type_(type) {
    if (!enabled_) return;
    at::autocast::set_autocast_dtype(type_, at::kBFloat16);
    at::autocast::set_autocast_enabled(type_, true);
    at::autocast::increment_nesting();
  }
  ~AutocastScope() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type_, false);
  }

 private:
  bool enabled_;
  at::DeviceType type_;
};

// train.channels_last: the 4-D weights (convolutions) in NHWC. Autograd gives their gradients the same layout and
// the optimizer's zeros_like moments follow; safetensors writes contiguous NCHW, copy_ reads any layout back.
void use_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
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

std::vector<std::pair<std::string, torch::Tensor>> trainable_parameters(Denoiser& model) {
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : model->named_parameters())
    if (item.value().requires_grad()) params.emplace_back(item.key(), item.value());
  return params;
}

}  // namespace

Trainer::Trainer(RunDir& run, Json effective_config, TrainConfig train, std::optional<SamplerConfig> sample,
                 Denoiser model, std::unique_ptr<Objective> objective, std::shared_ptr<const Dataset> data,
                 std::shared_ptr<Communicator> communicator)
    : run_(run),
      config_(std::move(effective_config)),
      train_(std::move(train)),
      sample_(std::move(sample)),
      ranks_(std::move(communicator)),
      // One process per GPU: a data-parallel rank trains on its own (core/device.h).
      device_(rank_device(resolve_device(train_.device, "train.device"), ranks_.local_rank())),
      model_(std::move(model)),
      objective_(std::move(objective)),
      data_(std::move(data)),
      generator_(make_generator(device_, static_cast<uint64_t>(train_.seed))),
      log_(run, ranks_.is_main()),
      checkpoints_(run, train_.keep_checkpoints, config_) {
  require(objective_ != nullptr, "trainer: no objective");
  model_->set_trained_with(objective_->name());  // saved with every checkpoint and EMA (the sampler's re-noising)
  require(data_ != nullptr && data_->size() > 0, "trainer: the dataset is empty");
  const int world = ranks_.world_size();
  const std::string single_process = objective_->single_process_reason();
  require(world == 1 || single_process.empty(), "this run has ", world, " processes: ", single_process);
  require(train_.batch % world == 0, "train.batch = ", train_.batch, " (the global batch) is not divisible by the ",
          world, " processes of this run");
  // On the CPU, oneDNN's bf16 convolutions need AVX512-BF16 or AMX; emulated bf16 would be slower than fp32.
  autocast_bf16_ = train_.bf16 && (device_.is_cuda() || cpu_has_native_bf16());
  if (train_.bf16 && !autocast_bf16_)
    std::fprintf(stderr, "onestep: warning: train.bf16: this CPU has no native bfloat16 (AVX512-BF16 / AMX); "
                         "training in fp32\n");
  model_->to(device_);
  model_->train();
  ranks_.broadcast_weights(model_);
  if (train_.channels_last) use_channels_last(*model_);
  auto params = trainable_parameters(model_);
  std::vector<torch::Tensor> trainable;
  for (auto& [name, p] : params) trainable.push_back(p);
  ranks_.average_gradients_of(std::move(trainable));
  optimizer_ = make_optimizer(train_.optimizer, std::move(params), train_.hyper);
  for (const EmaRule& rule : train_.ema_rules()) {
    emas_.emplace_back(rule, model_);
    if (train_.channels_last) use_channels_last(*emas_.back().model());
  }
  const int64_t per_rank = train_.batch / world;
  // A cap above the slice (a run resumed with more processes than it was configured for) runs the slice in one
  // piece, as EDM's training loop clamps batch_gpu to batch_gpu_total.
  micro_batch_ = train_.batch_per_gpu > 0 && train_.batch_per_gpu < per_rank ? train_.batch_per_gpu : 0;
  const BatchSlice slice{ranks_.rank() * per_rank, per_rank};
  loader_ = std::make_unique<BatchLoader>(data_, train_.batch, static_cast<uint64_t>(train_.seed),
                                          DataConfig::from_config(config_).flip, /*prefetch=*/2, slice,
                                          /*pin_memory=*/device_.is_cuda());
  if (ranks_.is_main()) fs::create_directories(run_.checkpoints());
}

Trainer::~Trainer() = default;

TrainingState Trainer::state() {
  return TrainingState{model_, emas_, *optimizer_, *objective_, generator_, *loader_, counters_, device_};
}

void Trainer::train(int64_t until_step) {
  if (until_step < 0) until_step = train_.steps;
  log_.begin_session(counters_.step, until_step, /*bar=*/!quiet_);
  while (counters_.step < until_step) {
    const int64_t next = counters_.step + 1;
    const bool reports_next = next % train_.log_every == 0 || next == until_step ||
                              (eval_hook_ && eval_every_ > 0 && next % eval_every_ == 0);
    const StepResult result = train_step(/*want_grad_norm=*/reports_next);
    if (!result.finite) {
      skip_nonfinite_step();
      continue;
    }
    counters_.nonfinite_streak = 0;
    maintenance(result, until_step);
  }
  log_.end_session();
  if (checkpoint_at_end_ && last_checkpoint_step_ != counters_.step) save_checkpoint();
  if (sample_ && train_.sample_every >= 0 && (train_.sample_every == 0 || counters_.step % train_.sample_every != 0))
    write_samples();
}

Trainer::StepResult Trainer::train_step(bool want_grad_norm) {
  // Accumulate gradients: this rank's slice of the global batch, averaged over the ranks.
  const Batch batch = next_batch_on_device();
  StepResult result = accumulate_gradients(batch);
  if (!result.finite) return result;  // skipped: no optimizer or EMA update

  // Update weights.
  torch::NoGradGuard no_grad;
  result.grad_norm = condition_gradients(want_grad_norm);
  result.lr = train_.lr * train_.lr_factor(counters_.step, counters_.images_seen);
  optimizer_->step(result.lr);

  // Update EMA: half-lives and images_seen count the global batch.
  const int64_t global_batch = batch.global_batch();
  for (Ema& ema : emas_) ema.update(model_, global_batch, counters_.images_seen);
  counters_.images_seen += global_batch;
  ++counters_.step;
  objective_->after_step(model_, TrainProgress{counters_.step, train_.steps, counters_.images_seen});
  return result;
}

Batch Trainer::next_batch_on_device() {
  Batch batch = loader_->next();
  // On CUDA the loader's batches are pinned: the copies overlap with the GPU's queued work (speed only; the
  // stream orders them before the kernels that read them).
  const bool non_blocking = device_.is_cuda();
  batch.x = batch.x.to(device_, batch.x.scalar_type(), non_blocking);
  if (train_.channels_last && batch.x.dim() == 4) batch.x = batch.x.contiguous(at::MemoryFormat::ChannelsLast);
  if (batch.labels.defined()) batch.labels = batch.labels.to(device_, batch.labels.scalar_type(), non_blocking);
  return batch;
}

Trainer::StepResult Trainer::accumulate_gradients(const Batch& batch) {
  for (auto& p : model_->parameters()) p.mutable_grad() = torch::Tensor();
  const DataParallel::DropoutStream dropout(ranks_, device_, static_cast<uint64_t>(train_.seed), counters_.step);
  StepResult result;
  torch::Tensor local_loss;
  const torch::Tensor last_loss = forward_micro_batches(batch, local_loss, result.stats);
  // The loss of the global batch: every rank then skips a non-finite step together.
  result.loss = ranks_.global_loss(local_loss);
  result.finite = std::isfinite(result.loss);
  if (result.finite) ranks_.backward(last_loss);
  return result;
}

// Gradient accumulation (train.batch_per_gpu): the slice runs in micro-batches of at most micro_batch_ rows.
// Each micro-batch keeps its place in the global batch (Batch::rows) and starts from the same objective
// generator state, so that it draws the global batch's per-sample values and keeps its own rows: the draws of
// every sample, and the generator state after the step, do not depend on batch_per_gpu. Its mean loss is
// weighted by its share of the slice (as EDM's training loop scales each round's loss by 1 / batch_gpu_total),
// so the accumulated gradient is the slice's mean gradient. The earlier micro-batches' backward accumulates
// locally; only the last one's feeds the gradient average, which adds what .grad already holds. (One exception:
// objective.target_estimate = "batch_posterior" averages over the rows of one forward pass, docs/distributed.md.)
torch::Tensor Trainer::forward_micro_batches(const Batch& batch, torch::Tensor& local_loss, Json& stats) {
  const TrainProgress progress{counters_.step, train_.steps, counters_.images_seen};
  const int64_t rows = batch.x.size(0);
  const int64_t micro = micro_batch_ > 0 ? std::min(micro_batch_, rows) : rows;
  const int64_t rounds = (rows + micro - 1) / micro;
  const torch::Tensor objective_start = rounds > 1 ? generator_state(generator_) : torch::Tensor();
  for (int64_t round = 0; round < rounds; ++round) {
    const int64_t start = round * micro, count = std::min(micro, rows - start);
    if (round > 0) set_generator_state(generator_, objective_start, checkpoint_layout::kRngObjective);
    LossOutput out;
    {
      AutocastScope autocast(autocast_bf16_, device_.type());
      out = objective_->compute_loss(model_, rounds > 1 ? batch.rows(start, count) : batch, progress, generator_);
    }
    if (rounds == 1) {
      stats = out.stats;
      local_loss = out.loss.detach().to(torch::kFloat64);
      return out.loss;
    }
    const double share = static_cast<double>(count) / static_cast<double>(rows);
    accumulate_stats(stats, out.stats, share);
    const torch::Tensor weighted = out.loss.detach().to(torch::kFloat64) * share;
    local_loss = round == 0 ? weighted : local_loss + weighted;
    if (round + 1 == rounds) return out.loss * share;
    (out.loss * share).backward();  // frees this micro-batch's activations
  }
  return torch::Tensor();  // not reached: the last round returns
}

double Trainer::condition_gradients(bool want_grad_norm) {
  std::vector<torch::Tensor> grads;
  for (auto& p : model_->parameters())
    if (p.grad().defined()) grads.push_back(p.grad());
  if (train_.grad_nan_to_num)  // as the reference code: nan -> 0, +-inf -> +-1e5 (docs/methods.md)
    for (auto& g : grads) g.nan_to_num_(0.0, 1e5, -1e5);
  // The global norm costs a host synchronisation (.item()): only where clipping needs it or a log line shows it.
  if (grads.empty() || (train_.grad_clip <= 0 && !want_grad_norm)) return 0.0;
  auto norms = at::_foreach_norm(grads, 2);
  const double norm = torch::stack(norms).to(torch::kFloat64).norm().item<double>();
  if (train_.grad_clip > 0 && norm > train_.grad_clip)
    at::_foreach_mul_(grads, train_.grad_clip / (norm + 1e-6));  // as torch.nn.utils.clip_grad_norm_
  return norm;
}

void Trainer::maintenance(const StepResult& result, int64_t until_step) {
  const int64_t step = counters_.step;
  log_.count_step(result.loss, train_.batch);
  const bool log_now = step % train_.log_every == 0 || step == until_step;
  const bool eval_now = eval_hook_ && eval_every_ > 0 && step % eval_every_ == 0 && ranks_.is_main();
  if (log_now || eval_now) {
    Json values{{"lr", result.lr}, {"grad_norm", result.grad_norm}, {"images_seen", counters_.images_seen}};
    if (result.stats.is_object()) values.update(result.stats);
    if (eval_now) {
      const Json evaluation = eval_hook_(sampling_model(), step);
      if (evaluation.is_object()) values.update(evaluation);
      model_->train();
    }
    log_.write_interval(step, values);
  }
  if (train_.checkpoint_every > 0 && step % train_.checkpoint_every == 0) save_checkpoint();
  if (train_.phema_snapshot_every > 0 && step % train_.phema_snapshot_every == 0 && ranks_.is_main())
    write_phema_snapshots(run_.root() / "phema", emas_, step, counters_.images_seen);  // trainer/phema.h
  if (sample_ && train_.sample_every > 0 && step % train_.sample_every == 0) write_samples();
}

void Trainer::skip_nonfinite_step() {
  ++counters_.nonfinite_streak;
  log_.write_nonfinite(counters_.step, counters_.nonfinite_streak);
  if (counters_.nonfinite_streak < train_.max_nonfinite) return;
  const std::string last = last_checkpoint_step_ >= 0
                               ? checkpoint_layout::checkpoint_path(run_.checkpoints(), last_checkpoint_step_).string()
                               : std::string("none written yet");
  fail("training stopped at step ", counters_.step, ": ", counters_.nonfinite_streak,
       " consecutive non-finite losses (train.max_nonfinite = ", train_.max_nonfinite, "); last good checkpoint: ",
       last);
}

void Trainer::write_samples() {
  if (!ranks_.is_main()) return;
  write_sample_grid(sampling_model(), SampleGridSettings{*sample_, train_.sample_count, train_.seed}, device_,
                    counters_.step, run_.samples(), log_.events());
  model_->train();
}

std::vector<std::pair<std::string, torch::Tensor>> Trainer::next_batch_gradients() {
  const Batch batch = next_batch_on_device();
  const StepResult r = accumulate_gradients(batch);
  require(r.finite, "next_batch_gradients: the loss is not finite");
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& item : model_->named_parameters())
    if (item.value().grad().defined()) out.emplace_back(item.key(), item.value().grad().clone());
  return out;
}

fs::path Trainer::save_checkpoint() {
  last_checkpoint_step_ = counters_.step;
  if (!ranks_.is_main()) return checkpoint_layout::checkpoint_path(run_.checkpoints(), counters_.step);
  TrainingState training = state();
  return checkpoints_.write(training, ranks_.active() ? ranks_.world_size() : 0);
}

fs::path Trainer::latest_checkpoint() const { return checkpoints_.latest(); }

void Trainer::load_checkpoint(const fs::path& checkpoint) {
  TrainingState training = state();
  checkpoints_.read(checkpoint, training);
  last_checkpoint_step_ = counters_.step;
  // The resumed session logs from step + 1 on: its records and events of those steps go.
  log_.resume_after(counters_.step);
}

}  // namespace onestep
