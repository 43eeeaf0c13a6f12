#pragma once
// The `onestep` command line: one executable, one file per subcommand.
#include "config/config.h"
#include "data/point_scaling.h"

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace onestep::cli {

int run_main(int argc, char** argv);

// --config FILE|PRESET and repeated --set section.key=value, shared by the commands that take a configuration.
struct ConfigOptions {
  std::string config;
  std::vector<std::string> overrides;
};
void add_config_options(CLI::App& command, ConfigOptions& options, bool config_required);
// Reads the file (or preset) and applies the overrides in order.
Json load_config(const ConfigOptions& options);

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
void register_runs_command(CLI::App& app);

// The one-screen summary of a run directory (`onestep runs DIR`, `onestep info --run DIR`).
void print_run_summary(const std::string& dir);

}  // namespace onestep::cli
