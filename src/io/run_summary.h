#pragma once
// What a run directory says about its run, read from config.toml, metrics.jsonl, checkpoints/ and samples/:
// the one-screen summary of `onestep runs` and `onestep info --run`.
#include "config/config.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace onestep {

struct RunSummary {
  // A quality metric of the evaluation hook (fd_fmnist_1step, fid_2step, swd_1step, ...): lower is better.
  struct Metric {
    std::string key;
    double last = 0, best = 0;
    int64_t last_step = 0, best_step = 0;
  };
  std::filesystem::path root;
  Json config;                          // config.toml; null when absent
  int64_t steps_done = 0;               // highest logged step, or the latest checkpoint's when higher
  int64_t steps_planned = 0;            // train.steps
  int64_t images_seen = 0;
  std::optional<double> last_loss, images_per_s;
  int64_t last_loss_step = 0;
  std::vector<Metric> metrics;          // in order of first appearance
  std::vector<std::string> checkpoints;  // file names, sorted
  std::string latest_checkpoint;         // named by checkpoints/latest; empty when none
  double wall_seconds = 0;               // summed over the sessions that wrote metrics.jsonl
  int64_t sessions = 0;                  // train/resume invocations seen in metrics.jsonl
  std::optional<double> last_logged_unix;  // "time" of the last line
  int64_t nonfinite_lines = 0, unreadable_lines = 0;
  bool has_model = false;                // model.safetensors, written when training completes
  int64_t sample_files = 0;
  std::string last_sample;
};

// True when `dir` holds config.toml or metrics.jsonl.
bool is_run_directory(const std::filesystem::path& dir);

// Reads a run directory; errors name the directory when it holds no run. A malformed line of metrics.jsonl (as a
// run killed mid-write leaves) is counted, not fatal.
RunSummary summarize_run(const std::filesystem::path& dir);

// The one-screen text: config, progress, last loss, metrics (best and last), checkpoints, wall time.
std::string format_run_summary(const RunSummary& summary);
// One line of a table of runs (with format_run_table_header above it).
std::string format_run_table_header();
std::string format_run_table_row(const RunSummary& summary);

}  // namespace onestep
