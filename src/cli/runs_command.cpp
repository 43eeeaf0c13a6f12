// `onestep runs`: what a run directory holds, on one screen (config, steps, last loss, best and last FD/SWD,
// checkpoints, wall time), or a table of the runs under a parent directory such as runs/.
#include "cli/commands.h"
#include "core/error.h"
#include "io/run_summary.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

namespace onestep::cli {

namespace fs = std::filesystem;

void print_run_summary(const std::string& dir) { std::cout << format_run_summary(summarize_run(dir)); }

namespace {

void run_runs(const std::vector<std::string>& dirs) {
  bool first = true;
  for (const auto& dir : dirs) {
    if (!first) std::cout << "\n";
    first = false;
    require(fs::is_directory(dir), "runs: '", dir, "' is not a directory");
    if (is_run_directory(dir)) {
      print_run_summary(dir);
      continue;
    }
    std::vector<fs::path> runs;
    for (const auto& entry : fs::directory_iterator(dir))
      if (is_run_directory(entry.path())) runs.push_back(entry.path());
    require(!runs.empty(), "runs: '", dir,
            "' is neither a run directory (no config.toml or metrics.jsonl) nor holds one");
    std::sort(runs.begin(), runs.end());
    std::cout << format_run_table_header() << "\n";
    for (const auto& run : runs) std::cout << format_run_table_row(summarize_run(run)) << "\n";
  }
}

}  // namespace

void register_runs_command(CLI::App& app) {
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto* command = app.add_subcommand("runs", "summarize run directories: config, steps, loss, FD/SWD, checkpoints");
  command->add_option("dirs", *dirs, "run directories, or directories holding runs (default: runs)");
  command->footer(
      "Examples:\n"
      "  onestep runs                  # a table of the runs under runs/\n"
      "  onestep runs runs/ict         # one run on one screen\n"
      "  onestep info --run runs/ict   # the same\n"
      "Best values are the lowest logged (FD, FID and SWD are distances). Wall time sums the training sessions\n"
      "(train, then each --resume) as logged in metrics.jsonl.");
  command->callback([dirs] { run_runs(dirs->empty() ? std::vector<std::string>{"runs"} : *dirs); });
}

}  // namespace onestep::cli
