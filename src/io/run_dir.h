#pragma once
// A run directory runs/<name>/: config.toml (effective configuration), metrics.jsonl, checkpoints/, samples/.
// An existing run is never overwritten: resume continues it, force is the only way to replace it.
#include "config/config.h"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

namespace onestep {

enum class RunMode { New, Resume, Force };

class RunDir {
 public:
  // New: fails if the directory exists and is not empty. Resume: fails if it does not exist, and removes the
  // temp files a killed run left behind (remove_stale_temp_files). Force: removes the directory first.
  RunDir(std::filesystem::path root, RunMode mode);

  // Removes the temp files of this run's own atomic writes ("<name>.tmp.<pid>" of config.toml, metrics.jsonl,
  // model.safetensors, checkpoints/latest and checkpoints/ckpt-*.safetensors) whose process is gone: what a
  // kill during a write leaves. Returns the number removed.
  int remove_stale_temp_files() const;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path checkpoints() const { return root_ / "checkpoints"; }
  std::filesystem::path samples() const { return root_ / "samples"; }
  std::filesystem::path config_path() const { return root_ / "config.toml"; }
  std::filesystem::path metrics_path() const { return root_ / "metrics.jsonl"; }
  bool resumed() const { return resumed_; }

  void write_config(const Json& effective_config) const;
  Json read_config() const;

 private:
  std::filesystem::path root_;
  bool resumed_ = false;
};

// `checkpoints/latest` holds the file name of a run's newest checkpoint: the path it names, checked to exist.
std::filesystem::path follow_checkpoint_pointer(const std::filesystem::path& pointer);

// Appends one JSON object per line; flushed per line so that a killed run keeps its log.
class MetricsLog {
 public:
  explicit MetricsLog(const std::filesystem::path& path);
  void write(const Json& record);
  // On resume: keeps only the records of steps <= `step` (those the checkpoint contains; a run killed after its
  // last checkpoint logged steps that it will run again) and drops torn lines; rewritten atomically.
  void truncate_after_step(int64_t step);

 private:
  std::mutex mutex_;
  std::ofstream out_;
  std::filesystem::path path_;
};

}  // namespace onestep
