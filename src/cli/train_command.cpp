#include "cli/commands.h"
#include "core/cpu_wait.h"
#include "core/error.h"
#include "data/data_shape.h"
#include "data/dataset.h"
#include "distributed/communicator.h"
#include "distributed/launch_env.h"
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

void run_train(const TrainOptions& options) {
  require(!(options.resume && options.force), "--resume and --force exclude each other");
  require(!options.run.empty(), "--run DIR is required");
  require(options.steps >= 0, "--steps must be > 0");
  Json root;
  if (options.resume) {
    require(options.config.config.empty() && options.config.overrides.empty(),
            "--resume continues with the run's own config.toml; drop --config/--set (--steps extends the run)");
    require(options.init.empty(), "--init starts a new run; it cannot be combined with --resume");
    require(std::filesystem::exists(options.run), "--resume: run '", options.run, "' does not exist");
    root = load_toml_file(std::filesystem::path(options.run) / "config.toml");
  } else {
    require(!options.config.config.empty(), "--config PRESET|FILE is required for a new run");
    root = load_config(options.config);
  }
  root.erase("base");  // include key of presets, resolved by the config loader
  check_sections(root, {"run", "data", "model", "precond", "objective", "train", "sample", "eval"});
  if (options.steps > 0) root["train"]["steps"] = options.steps;

  // Validate every section before anything is written.
  const TrainConfig train = TrainConfig::from_config(root);
  const DataConfig data_config = DataConfig::from_config(root);
  const SamplerConfig sample = SamplerConfig::from_config(root);
  const EvalConfig eval = EvalConfig::from_config(root);
  if (resolve_device(train.device).is_cpu())
    apply_cpu_wait_policy(train.cpu_wait, train.threads > 0 ? train.threads : torch::get_num_threads());
  if (train.threads > 0) torch::set_num_threads(static_cast<int>(train.threads));
  torch::manual_seed(static_cast<uint64_t>(train.seed));
  // The data decides the network's sample shape and class count; a user's value that disagrees is refused
  // (data/data_shape.h, docs/data.md).
  Dataset loaded = load_dataset(data_config);
  const std::string shape_note = apply_data_shape(
      root, DataShape::of(loaded, data_config),
      options.resume ? ModelKeyOrigin::of_resumed_run()
                     : ModelKeyOrigin::of_new_run(options.config.config, options.config.overrides));
  if (!shape_note.empty()) std::fprintf(stderr, "note: %s\n", shape_note.c_str());
  Denoiser model = build_model(root);
  auto objective = build_objective(root, model);

  Json effective = root;
  effective["train"] = train.to_json();
  effective["data"] = data_config.to_json();
  effective["sample"] = sample.to_json();
  effective["model"] = model->model_config();
  effective["precond"] = model->precond().to_json();
  effective["objective"] = objective->to_json();
  effective["eval"] = eval.to_json();

  if (!loaded.is_image()) {
    // Points train in the model's units (spread sigma_data); the map travels with every checkpoint.
    model->set_point_scaling(
        PointScaling::fit(loaded.samples, model->precond().sigma_data, data_config.normalize));
    loaded.samples = model->point_scaling().to_model(loaded.samples).contiguous();
    std::fprintf(stderr, "points scaled for training (data.normalize = %s): %s\n", data_config.normalize.c_str(),
                 model->point_scaling().describe().c_str());
  }
  if (!options.init.empty()) load_init_weights(model, options.init);
  auto data = std::make_shared<const Dataset>(std::move(loaded));
  // Labels taken from folder names: the names travel with the run, so that label k keeps its meaning.
  if (data_config.labels && !data->class_names.empty()) effective["data"]["class_names"] = data->class_names;

  // Data parallel when launched so (torchrun, srun, onestep launch): see docs/distributed.md.
  const LaunchEnv launch = launch_env_from_environment();
  if (launch.distributed())
    require(train.batch % launch.world_size == 0, "train.batch = ", train.batch,
            " (the global batch) is not divisible by WORLD_SIZE = ", launch.world_size);
  const std::shared_ptr<Communicator> communicator =
      join_launched_job(options.distributed, resolve_device(train.device));
  const bool main_rank = communicator == nullptr || communicator->is_main();

  // Rank 0 creates (or checks) the run directory and writes its config; the others join it afterwards.
  std::unique_ptr<RunDir> run_dir;
  if (main_rank) {
    run_dir = std::make_unique<RunDir>(options.run, options.resume  ? RunMode::Resume
                                                    : options.force ? RunMode::Force
                                                                    : RunMode::New);
  }
  // What fails on the first step (a model that does not fit the data, a missing CUDA device, labels beyond
  // label_dim) must not leave a run directory behind that the same command then refuses without --force: a new
  // run that fails before completing a step and before any checkpoint removes its directory (rank 0's duty).
  std::unique_ptr<Trainer> trainer;
  try {
    if (main_rank) {
      if (!options.resume) run_dir->write_config(effective);
      else if (options.steps > 0) run_dir->write_config(effective);
    }
    if (communicator) communicator->barrier("barrier after creating the run directory");
    if (!main_rank) run_dir = std::make_unique<RunDir>(options.run, RunMode::Resume);
    trainer = std::make_unique<Trainer>(*run_dir, effective, train, sample, model, std::move(objective), data,
                                        communicator);
    if (eval.every > 0) trainer->set_eval_hook(make_evaluation_hook(effective, /*verbose=*/true), eval.every);
    if (options.resume) {
      const auto checkpoint = trainer->latest_checkpoint();
      trainer->load_checkpoint(checkpoint);
      if (main_rank)
        std::fprintf(stderr, "resuming %s at step %lld\n", checkpoint.string().c_str(),
                     static_cast<long long>(trainer->step()));
    }
    if (communicator && main_rank)
      std::fprintf(stderr,
                   "data parallel: %d processes, %s, rendezvous %s:%d (%s), %lld samples per process and step\n",
                   communicator->world_size(), communicator->backend_name().c_str(), launch.master_addr.c_str(),
                   launch.master_port, launch.source == "slurm" ? "SLURM variables" : "RANK/WORLD_SIZE variables",
                   static_cast<long long>(train.batch / communicator->world_size()));
    if (const int64_t slice = train.batch / (communicator ? communicator->world_size() : 1);
        main_rank && train.batch_per_gpu > 0 && train.batch_per_gpu < slice)
      std::fprintf(stderr, "gradient accumulation: %lld micro-batches of at most %lld samples per process and step "
                   "(train.batch_per_gpu)\n", static_cast<long long>((slice + train.batch_per_gpu - 1) /
                   train.batch_per_gpu), static_cast<long long>(train.batch_per_gpu));
    if (main_rank)
      std::fprintf(stderr, "training %s (%s) on %s: %lld steps, batch %lld\n", options.run.c_str(),
                   effective["objective"].value("method", std::string("?")).c_str(), trainer->device().str().c_str(),
                   static_cast<long long>(train.steps), static_cast<long long>(train.batch));
    trainer->train();
  } catch (...) {
    const bool never_stepped = !trainer || trainer->step() == 0;
    if (main_rank && !options.resume && never_stepped && run_dir &&
        !std::filesystem::exists(run_dir->checkpoints() / "latest")) {
      trainer.reset();  // closes metrics.jsonl
      std::error_code ignored;
      std::filesystem::remove_all(run_dir->root(), ignored);
    }
    throw;
  }
  if (!main_rank) return;
  RunDir& run = *run_dir;
  // The weights to sample from: the first EMA (the raw weights when there is none).
  Denoiser& final_model = trainer->emas().empty() ? trainer->model() : trainer->emas().front().model();
  // With the run's configuration, so that `sample` and `eval` default to the sampler it was trained to be used with
  // (points-ect: one step from t = 5) without being told the preset.
  save_model(run.root() / "model.safetensors", final_model, {{"onestep_config", effective.dump()}});
  std::fprintf(stderr, "done: %s/model.safetensors (%s), checkpoints in %s\n", run.root().c_str(),
               trainer->emas().empty() ? "raw weights" : ("EMA " + trainer->emas().front().name()).c_str(),
               run.checkpoints().c_str());
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
