#include "cli/commands.h"
#include "core/device.h"
#include "core/error.h"
#include "distributed/communicator.h"
#include "distributed/launch_env.h"
#include "io/run_dir.h"
#include "io/safetensors.h"

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <filesystem>
#include <iostream>

namespace onestep::cli {

void add_config_options(CLI::App& command, ConfigOptions& options, bool config_required) {
  auto* opt = command.add_option("--config,-c", options.config,
                                 "TOML configuration file, or the name of a preset in configs/");
  if (config_required) opt->required();
  command.add_option("--set,-s", options.overrides,
                     "override one key, section.key=value (repeatable), e.g. --set train.batch=64");
}

Json load_config(const ConfigOptions& options, Json fallback) {
  Json root = options.config.empty() ? std::move(fallback) : load_config_file(resolve_preset(options.config));
  for (const auto& assignment : options.overrides) apply_override(root, assignment);
  return root;
}

Json recorded_run_config(const std::string& checkpoint) {
  std::filesystem::path path = checkpoint;
  if (!std::filesystem::is_regular_file(path)) return Json::object();
  path = resolve_checkpoint_argument(path);
  const auto metadata = read_safetensors_metadata(path);
  const auto found = metadata.find(checkpoint_layout::kRunConfigKey);
  if (found == metadata.end()) return Json::object();
  Json config = Json::parse(found->second, nullptr, /*allow_exceptions=*/false);
  require(config.is_object(), "checkpoint '", path.string(),
          "': its recorded run configuration (metadata 'onestep_config') is not a JSON object");
  return config;
}

void add_distributed_options(CLI::App& command, DistributedOptions& options) {
  command.add_option("--dist-timeout", options.timeout,
                     "data-parallel runs: seconds a rank waits for the others (rendezvous, each collective) before "
                     "it stops with an error")
      ->capture_default_str();
  command.add_option("--dist-backend", options.backend,
                     "data-parallel runs: auto (nccl on CUDA when built with it, else gloo) | nccl | gloo")
      ->check(CLI::IsMember({"auto", "nccl", "gloo"}))
      ->capture_default_str();
}

void add_cpu_wait_option(CLI::App& command, std::string& policy) {
  command.add_option("--cpu-wait", policy,
                     "auto | spin | sleep: how OpenMP threads wait on the CPU (as train.cpu_wait; default auto)")
      ->check(CLI::IsMember({"auto", "spin", "sleep"}));
}

c10::Device configure_command_process(const std::string& device, const std::string& cpu_wait,
                                      const LaunchEnv& launch) {
  ProcessSettings settings;
  settings.device = parse_device_choice(device, "--device");
  settings.device_key = "--device";
  settings.local_rank = launch.local_rank;
  settings.cpu_wait = cpu_wait;
  settings.cpu_wait_key = "--cpu-wait";
  return configure_process(settings);
}

LaunchEnv launch_environment() {
  LaunchEnv launch = launch_env_from_environment();
  if (!launch.note.empty()) std::cerr << "note: " << launch.note << "\n";
  return launch;
}

std::shared_ptr<Communicator> join_launched_job(const DistributedOptions& options, const LaunchEnv& launch,
                                                const c10::Device& device) {
  if (!launch.distributed()) return nullptr;
  require(options.timeout > 0, "--dist-timeout must be > 0 s");
  return Communicator::create(launch, device, std::chrono::seconds(options.timeout), options.backend);
}

namespace {

// c10 errors carry a multi-line backtrace; users get its first line.
std::string first_line(const std::string& text) {
  const auto nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

}  // namespace

int run_main(int argc, char** argv) {
  CLI::App app{"onestep: consistency models (iCT, ECT) and the EDM diffusion they start from, in C++"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  onestep train --config fmnist-ict-cpu --run runs/ict\n"
      "  onestep sample --ckpt runs/ict/checkpoints/latest --steps 2 --n 64 --out grid.png\n"
      "  onestep eval --ckpt model.safetensors --steps 1,2 --n 10000 --ref ref.npz --metric fd-fmnist\n"
      "  onestep info --preset ddpmpp-cifar10\n"
      "  onestep data images/ --grid first.png\n"
      "  onestep runs runs/ict\n"
      "  onestep launch --nproc 2 -- train --config points-ict --run runs/p2\n"
      "Run 'onestep COMMAND --help' for a command's options.");
  register_train_command(app);
  register_sample_command(app);
  register_eval_command(app);
  register_info_command(app);
  register_data_command(app);
  register_runs_command(app);
  register_launch_command(app);
  register_phema_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ExitCode& e) {
    return e.code;
  } catch (const onestep::Error& e) {
    std::cerr << "onestep: error: " << e.what() << std::endl;
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "onestep: error: " << first_line(e.what_without_backtrace()) << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "onestep: error: " << first_line(e.what()) << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace onestep::cli
