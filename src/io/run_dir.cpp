#include "io/run_dir.h"

#include "core/error.h"
#include "io/atomic_file.h"

namespace onestep {

RunDir::RunDir(std::filesystem::path root, RunMode mode) : root_(std::move(root)) {
  namespace fs = std::filesystem;
  const bool exists = fs::exists(root_);
  const bool non_empty = exists && fs::is_directory(root_) && !fs::is_empty(root_);
  switch (mode) {
    case RunMode::New:
      require(!non_empty, "run directory '", root_.string(),
              "' already exists: pass --resume to continue it or --force to replace it");
      require(!exists || fs::is_directory(root_), "run directory '", root_.string(), "' is a file");
      break;
    case RunMode::Resume:
      require(exists && fs::exists(config_path()), "cannot resume: '", root_.string(),
              "' holds no run (no config.toml)");
      resumed_ = true;
      break;
    case RunMode::Force:
      if (exists) fs::remove_all(root_);
      break;
  }
  fs::create_directories(checkpoints());
  fs::create_directories(samples());
}

void RunDir::write_config(const Json& effective_config) const {
  write_text_atomically(config_path(), to_toml(effective_config));
}

Json RunDir::read_config() const { return load_toml_file(config_path()); }

MetricsLog::MetricsLog(const std::filesystem::path& path) : out_(path, std::ios::app), path_(path) {
  require(out_.good(), "cannot open metrics log '", path.string(), "'");
}

void MetricsLog::write(const Json& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  out_ << record.dump() << "\n";
  out_.flush();
}

std::filesystem::path follow_checkpoint_pointer(const std::filesystem::path& pointer) {
  std::string name = read_file_bytes(pointer);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  require(!name.empty() && name.find('/') == std::string::npos, pointer.string(), ": malformed checkpoint pointer");
  const std::filesystem::path path = pointer.parent_path() / name;
  require(std::filesystem::exists(path), pointer.string(), " names ", name, ", which does not exist");
  return path;
}

}  // namespace onestep
