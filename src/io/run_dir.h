#pragma once
// A run directory runs/<name>/: config.toml (effective configuration), metrics.jsonl, checkpoints/, samples/.
// An existing run is never overwritten: resume continues it, force is the only way to replace it.
#include "config/config.h"
#include "io/checkpoint_layout.h"
#include "io/run_lock.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>

namespace onestep {

enum class RunMode { New, Resume, Force };
// Lock: the one process that writes the run (train, or data-parallel rank 0) takes its RunLock before anything
// is written; the other ranks and readers join without it.
enum class RunLocking { None, Lock };

// The files of a run directory, named once: for the run itself (RunDir) and for readers that only look at it
// (`onestep runs`). The checkpoint file names are checkpoint_layout's.
struct RunPaths {
  std::filesystem::path root;
  std::filesystem::path config() const { return root / "config.toml"; }
  std::filesystem::path metrics() const { return root / "metrics.jsonl"; }
  std::filesystem::path model() const { return root / checkpoint_layout::kRunModelFile; }
  std::filesystem::path samples() const { return root / "samples"; }
  std::filesystem::path checkpoints() const { return root / checkpoint_layout::kCheckpointsDir; }
  std::filesystem::path latest_pointer() const { return checkpoints() / checkpoint_layout::kLatestPointer; }
};

class RunDir {
 public:
  // New: fails if the directory exists and is not empty. Resume: fails if it does not exist, and removes the
  // temp files a killed run left behind (remove_stale_temp_files). Force: empties the directory first. With
  // RunLocking::Lock the run lock is taken before any of that (a live holder: an error naming it) and held until
  // this object is destroyed.
  RunDir(std::filesystem::path root, RunMode mode, RunLocking locking = RunLocking::None);

  // Removes the temp files of this run's own atomic writes ("<name>.tmp.<pid>" of config.toml, metrics.jsonl,
  // model.safetensors, checkpoints/latest and checkpoints/ckpt-*.safetensors) whose process is gone: what a
  // kill during a write leaves. Returns the number removed.
  int remove_stale_temp_files() const;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path checkpoints() const { return RunPaths{root_}.checkpoints(); }
  std::filesystem::path samples() const { return RunPaths{root_}.samples(); }
  std::filesystem::path config_path() const { return RunPaths{root_}.config(); }
  std::filesystem::path metrics_path() const { return RunPaths{root_}.metrics(); }
  std::filesystem::path model_path() const { return RunPaths{root_}.model(); }
  std::filesystem::path latest_pointer() const { return RunPaths{root_}.latest_pointer(); }
  bool resumed() const { return resumed_; }

  void write_config(const Json& effective_config) const;
  Json read_config() const;

 private:
  std::filesystem::path root_;
  bool resumed_ = false;
  std::unique_ptr<RunLock> lock_;
};

// `checkpoints/latest` holds the file name of a run's newest checkpoint: the path it names, checked to exist.
std::filesystem::path follow_checkpoint_pointer(const std::filesystem::path& pointer);
// The file a --ckpt argument names: through the pointer when it is a `latest` pointer file, else itself.
std::filesystem::path resolve_checkpoint_argument(const std::filesystem::path& path);

// Appends one JSON object per line, each line with one write(2) straight to the file, so that a killed run keeps
// its log; a line that cannot be written whole (disk full) is cut back, never left torn.
class MetricsLog {
 public:
  explicit MetricsLog(const std::filesystem::path& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(const Json& record);
  // On resume: keeps only the records of steps <= `step` (those the checkpoint contains; a run killed after its
  // last checkpoint logged steps that it will run again) and drops torn lines; rewritten atomically.
  void truncate_after_step(int64_t step);

 private:
  void open();
  std::mutex mutex_;
  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace onestep
