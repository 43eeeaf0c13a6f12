#pragma once
// The `onestep` command line: one executable, one file per subcommand.
#include "config/config.h"
#include "data/point_scaling.h"
#include "distributed/launch_env.h"

#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace onestep {
class Communicator;
}

namespace onestep::cli {

int run_main(int argc, char** argv);

// --config FILE|PRESET and repeated --set section.key=value, shared by the commands that take a configuration.
struct ConfigOptions {
  std::string config;
  std::vector<std::string> overrides;
};
void add_config_options(CLI::App& command, ConfigOptions& options, bool config_required);
// Reads the file (or preset) and applies the overrides in order; without --config the overrides apply to
// `fallback` (eval: the settings a checkpoint recorded).
Json load_config(const ConfigOptions& options, Json fallback = Json::object());
// The configuration of the run that wrote a checkpoint (metadata "onestep_config": model.safetensors written by
// `onestep train`, every training checkpoint; `latest` pointers followed); an empty object for files without one
// (converted checkpoints, files from before it was recorded) and for paths that are not files.
Json recorded_run_config(const std::string& checkpoint);

// --dist-timeout and --dist-backend of the commands that run as ranks of a launched job (train, sample, eval).
struct DistributedOptions {
  int64_t timeout = 1800;
  std::string backend = "auto";
};
void add_distributed_options(CLI::App& command, DistributedOptions& options);
// --cpu-wait auto | spin | sleep of sample and eval (train reads train.cpu_wait; core/cpu_wait.h).
void add_cpu_wait_option(CLI::App& command, std::string& policy);
// sample's and eval's process settings (core/device.h: configure_process) from --device and --cpu-wait, for the
// process `launch` describes; returns this process's device (cuda:<its GPU> for a rank of a launched job).
c10::Device configure_command_process(const std::string& device, const std::string& cpu_wait,
                                      const LaunchEnv& launch);
// The launch environment of this process (RANK/WORLD_SIZE or SLURM's variables: docs/distributed.md); its note,
// if any, printed.
LaunchEnv launch_environment();
// The job `launch` describes, joined with its tensors on `device` (this rank's own, from configure_process);
// nullptr for a single process.
std::shared_ptr<Communicator> join_launched_job(const DistributedOptions& options, const LaunchEnv& launch,
                                                const c10::Device& device);

// Thrown by a command that already reported its failure and wants this exit status (launch: its failed rank's).
struct ExitCode {
  int code;
};
// A density image of 2-D points in the data's units: with a scaling (a model trained with data.normalize) drawn in
// model units, the window +-3 sigma_data around the data mean, so a model's samples and its data line up; with the
// identity the fixed window [-2.5, 2.5]^2.
torch::Tensor points_density_image(const PointScaling& scaling, double sigma_data, const torch::Tensor& points);

void register_train_command(CLI::App& app);
void register_launch_command(CLI::App& app);
void register_sample_command(CLI::App& app);
void register_eval_command(CLI::App& app);
void register_info_command(CLI::App& app);
void register_data_command(CLI::App& app);
void register_runs_command(CLI::App& app);
void register_phema_command(CLI::App& app);

// The one-screen summary of a run directory (`onestep runs DIR`, `onestep info --run DIR`).
void print_run_summary(const std::string& dir);

}  // namespace onestep::cli
