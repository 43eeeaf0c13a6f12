#include "cli/commands.h"
#include "core/device.h"
#include "core/error.h"
#include "data/data_shape.h"
#include "data/dataset.h"
#include "distributed/communicator.h"
#include "distributed/launch_env.h"
#include "io/checkpoint_layout.h"
#include "io/run_dir.h"
#include "metrics/evaluation.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "samplers/sampler.h"
#include "trainer/train_config.h"
#include "trainer/trainer.h"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace onestep::cli {

namespace {

struct TrainOptions {
  ConfigOptions config;
  std::string run;
  bool resume = false, force = false;
  std::string init;
  int64_t steps = 0;
  DistributedOptions distributed;
};

// Weights of a diffusion checkpoint (onestep model file, converted EDM file, or a training checkpoint, whose
// first EMA is taken) copied into `model` (precond/model.h: copy_init_weights), with a one-line note of what was
// dropped (EDM's augmentation mapping).
void load_init_weights(Denoiser& model, const std::string& path) {
  Denoiser source = load_model(path);  // a training checkpoint gives its first EMA
  require(source->point_scaling().same_as(model->point_scaling()), "--init ", path, ": trained on points scaled as ",
          source->point_scaling().describe(), ", this run's data gives ", model->point_scaling().describe(),
          " (train both on the same data with the same data.normalize)");
  // The keys the data decides first: "img_channels 1 vs 3" says more than the first tensor whose shape differs.
  const std::string differ = model_shape_difference(source->model_config(), model->model_config());
  require(differ.empty(), "--init ", path, ": the checkpoint's network was built for other data (", differ,
          ": checkpoint vs this run, whose data gives ", model_shape_keys_text(model->model_config()),
          "): start from a checkpoint trained on data of this shape and classes, or train without --init");
  const std::vector<std::string> dropped = copy_init_weights(model, source, path);
  if (dropped.empty()) return;
  std::string list;
  for (const auto& name : dropped) list += (list.empty() ? "" : ", ") + name;
  std::fprintf(stderr, "note: --init %s: dropped %s (augmentation conditioning; the configured model has "
               "augment_dim 0), as ECT does\n", path.c_str(), list.c_str());
}

// The run's configuration: its own config.toml on --resume, else --config with the --set overrides.
Json read_run_config(const TrainOptions& options) {
  require(!(options.resume && options.force), "--resume and --force exclude each other");
  require(!options.run.empty(), "--run DIR is required");
  require(options.steps >= 0, "--steps must be > 0");
  Json root;
  if (options.resume) {
    require(options.config.config.empty() && options.config.overrides.empty(),
            "--resume continues with the run's own config.toml; drop --config/--set (--steps extends the run)");
    require(options.init.empty(), "--init starts a new run; it cannot be combined with --resume");
    require(std::filesystem::exists(options.run), "--resume: run '", options.run, "' does not exist");
    root = load_toml_file(RunPaths{options.run}.config());
  } else {
    require(!options.config.config.empty(), "--config PRESET|FILE is required for a new run");
    root = load_config(options.config);
  }
  root.erase("base");  // include key of presets, resolved by the config loader
  check_sections(root, {"run", "data", "model", "precond", "objective", "train", "sample", "eval"});
  if (options.steps > 0) root["train"]["steps"] = options.steps;
  return root;
}

// Every section the trainer reads, validated and typed before anything is written.
struct RunConfigs {
  TrainConfig train;
  DataConfig data;
  SamplerConfig sample;
  EvalConfig eval;
  static RunConfigs from_config(const Json& root) {
    return RunConfigs{TrainConfig::from_config(root), DataConfig::from_config(root), SamplerConfig::from_config(root),
                      EvalConfig::from_config(root)};
  }
};

// What the run records (config.toml, every checkpoint): each section as its reader completed it.
Json effective_config(Json root, const RunConfigs& configs, Denoiser& model, const Objective& objective) {
  root["train"] = configs.train.to_json();
  root["data"] = configs.data.to_json();
  root["sample"] = configs.sample.to_json();
  root["model"] = model->model_config();
  root["precond"] = model->precond().to_json();
  root["objective"] = objective.to_json();
  root["eval"] = configs.eval.to_json();
  return root;
}

// The training data in the model's units: points scaled to the spread sigma_data, the map stored with the model so
// that every checkpoint carries it (the shape checks are data_shape.h's, applied before the model was built).
// Folder class names go into `effective`.
std::shared_ptr<const Dataset> prepare_training_data(const DataConfig& config, Dataset loaded, Denoiser& model,
                                                     Json& effective) {
  if (!loaded.is_image()) {
    model->set_point_scaling(PointScaling::fit(loaded.samples, model->precond().sigma_data, config.normalize));
    loaded.samples = model->point_scaling().to_model(loaded.samples).contiguous();
    std::fprintf(stderr, "points scaled for training (data.normalize = %s): %s\n", config.normalize.c_str(),
                 model->point_scaling().describe().c_str());
  }
  auto data = std::make_shared<const Dataset>(std::move(loaded));
  // Labels taken from folder names: the names travel with the run, so that label k keeps its meaning.
  if (config.labels && !data->class_names.empty()) effective["data"]["class_names"] = data->class_names;
  return data;
}

// The lines that say how this run trains (rank 0).
void print_training_plan(const TrainOptions& options, const TrainConfig& train, const Json& effective,
                         const Trainer& trainer, const Communicator* communicator, const LaunchEnv& launch) {
  const int world = communicator ? communicator->world_size() : 1;
  if (communicator)
    std::fprintf(stderr,
                 "data parallel: %d processes, %s, rendezvous %s:%d (%s), %lld samples per process and step\n", world,
                 communicator->backend_name().c_str(), launch.master_addr.c_str(), launch.master_port,
                 launch.source == "slurm" ? "SLURM variables" : "RANK/WORLD_SIZE variables",
                 static_cast<long long>(train.batch / world));
  if (const int64_t slice = train.batch / world; train.batch_per_gpu > 0 && train.batch_per_gpu < slice)
    std::fprintf(stderr, "gradient accumulation: %lld micro-batches of at most %lld samples per process and step "
                 "(train.batch_per_gpu)\n", static_cast<long long>((slice + train.batch_per_gpu - 1) /
                 train.batch_per_gpu), static_cast<long long>(train.batch_per_gpu));
  std::fprintf(stderr, "training %s (%s) on %s: %lld steps, batch %lld\n", options.run.c_str(),
               effective["objective"].value("method", std::string("?")).c_str(), trainer.device().str().c_str(),
               static_cast<long long>(train.steps), static_cast<long long>(train.batch));
}

// The run directory and the trainer in it (resumed from its latest checkpoint with --resume). Rank 0 creates (or
// checks) the directory and writes its config; the other ranks join it afterwards.
std::unique_ptr<Trainer> start_trainer(const TrainOptions& options, const RunConfigs& configs, const Json& effective,
                                       Denoiser model, std::unique_ptr<Objective> objective,
                                       std::shared_ptr<const Dataset> data,
                                       const std::shared_ptr<Communicator>& communicator,
                                       std::unique_ptr<RunDir>& run_dir) {
  const bool main_rank = communicator == nullptr || communicator->is_main();
  if (main_rank && (!options.resume || options.steps > 0)) run_dir->write_config(effective);
  if (communicator) communicator->barrier("barrier after creating the run directory");
  if (!main_rank) run_dir = std::make_unique<RunDir>(options.run, RunMode::Resume);
  auto trainer = std::make_unique<Trainer>(*run_dir, effective, configs.train, configs.sample, model,
                                           std::move(objective), std::move(data), communicator);
  if (configs.eval.every > 0)
    trainer->set_eval_hook(make_evaluation_hook(effective, /*verbose=*/true), configs.eval.every);
  if (options.resume) {
    const auto checkpoint = trainer->latest_checkpoint();
    trainer->load_checkpoint(checkpoint);
    if (main_rank)
      std::fprintf(stderr, "resuming %s at step %lld\n", checkpoint.string().c_str(),
                   static_cast<long long>(trainer->step()));
  }
  return trainer;
}

// The first EMA (the raw weights when there is none) as the run's model.safetensors, with the run's configuration,
// so that `sample` and `eval` default to the sampler it was trained to be used with (points-ect: one step from
// t = 5) without being told the preset.
void save_final_model(RunDir& run, Trainer& trainer, const Json& effective) {
  Denoiser& final_model = trainer.emas().empty() ? trainer.model() : trainer.emas().front().model();
  // The file records which weights it holds, so that `sample --weights raw` on it is refused, not silently the EMA.
  const std::string weights =
      trainer.emas().empty() ? std::string(checkpoint_layout::kRawWeights) : trainer.emas().front().name();
  save_model(run.model_path(), final_model,
             {{checkpoint_layout::kRunConfigKey, effective.dump()}, {checkpoint_layout::kModelWeightsKey, weights}});
  std::fprintf(stderr, "done: %s (%s), checkpoints in %s\n", run.model_path().c_str(),
               trainer.emas().empty() ? "raw weights" : ("EMA " + trainer.emas().front().name()).c_str(),
               run.checkpoints().c_str());
}

void run_train(const TrainOptions& options) {
  Json root = read_run_config(options);
  const RunConfigs configs = RunConfigs::from_config(root);
  // Data parallel when launched so (torchrun, srun, onestep launch): see docs/distributed.md.
  const LaunchEnv launch = launch_environment();
  const torch::Device device = configure_process(configs.train.process_settings(launch.local_rank));
  // The data decides the network's sample shape and class count; a user's value that disagrees is refused
  // (data/data_shape.h, docs/data.md).
  Dataset loaded = load_dataset(configs.data);
  const std::string shape_note = apply_data_shape(
      root, DataShape::of(loaded, configs.data),
      options.resume ? ModelKeyOrigin::of_resumed_run()
                     : ModelKeyOrigin::of_new_run(options.config.config, options.config.overrides));
  if (!shape_note.empty()) std::fprintf(stderr, "note: %s\n", shape_note.c_str());
  Denoiser model = build_model(root);
  auto objective = build_objective(root, model);
  Json effective = effective_config(root, configs, model, *objective);
  auto data = prepare_training_data(configs.data, std::move(loaded), model, effective);
  if (!options.init.empty()) load_init_weights(model, options.init);
  if (launch.distributed())
    require(configs.train.batch % launch.world_size == 0, "train.batch = ", configs.train.batch,
            " (the global batch) is not divisible by WORLD_SIZE = ", launch.world_size);
  const std::shared_ptr<Communicator> communicator = join_launched_job(options.distributed, launch, device);
  const bool main_rank = communicator == nullptr || communicator->is_main();
  std::unique_ptr<RunDir> run_dir;
  if (main_rank)
    run_dir = std::make_unique<RunDir>(options.run,
                                       options.resume  ? RunMode::Resume
                                       : options.force ? RunMode::Force
                                                       : RunMode::New,
                                       RunLocking::Lock);  // one writer per run (io/run_lock.h)
  // What fails on the first step (a model that does not fit the data, a missing CUDA device, labels beyond
  // label_dim) must not leave a run directory behind that the same command then refuses without --force: a new
  // run that fails before completing a step and before any checkpoint removes its directory (rank 0's duty).
  std::unique_ptr<Trainer> trainer;
  try {
    trainer = start_trainer(options, configs, effective, model, std::move(objective), data, communicator, run_dir);
    if (main_rank) print_training_plan(options, configs.train, effective, *trainer, communicator.get(), launch);
    trainer->train();
  } catch (...) {
    const bool never_stepped = !trainer || trainer->step() == 0;
    if (main_rank && !options.resume && never_stepped && run_dir &&
        !std::filesystem::exists(run_dir->latest_pointer())) {
      trainer.reset();  // closes metrics.jsonl
      std::error_code ignored;
      std::filesystem::remove_all(run_dir->root(), ignored);
    }
    throw;
  }
  if (main_rank) save_final_model(*run_dir, *trainer, effective);
}

}  // namespace

void register_train_command(CLI::App& app) {
  auto options = std::make_shared<TrainOptions>();
  auto* command = app.add_subcommand("train", "train a model (EDM diffusion, CT, iCT, ECT) into a run directory");
  add_config_options(*command, options->config, false);
  command->add_option("--run,-r", options->run, "run directory, e.g. runs/fmnist-ict")->required();
  command->add_flag("--resume", options->resume, "continue the run from its latest checkpoint (exactly)");
  command->add_flag("--force", options->force, "delete an existing run directory first");
  command->add_option("--init", options->init,
                      "start from the weights of a diffusion checkpoint (ECT); the architecture must match, except "
                      "EDM's augmentation mapping (augment_dim 9), which is dropped with a note");
  command->add_option("--steps", options->steps, "override train.steps (with --resume: extend the run)");
  add_distributed_options(*command, options->distributed);
  command->footer(
      "Examples:\n"
      "  onestep train --config fmnist-ict-cpu --run runs/fmnist-ict\n"
      "  onestep train --config points-edm --run runs/points-edm\n"
      "  onestep train --config points-ect --init runs/points-edm/model.safetensors --run runs/points-ect\n"
      "  onestep train --run runs/fmnist-ict --resume --steps 4000\n"
      "  onestep train --config cifar10-ect --set train.batch=64 --run runs/c10-ect --force\n"
      "  onestep launch --nproc 2 -- train --config points-ict --run runs/p2   (data parallel: docs/distributed.md)");
  command->callback([options] { run_train(*options); });
}

}  // namespace onestep::cli
