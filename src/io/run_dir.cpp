#include "io/run_dir.h"

#include "core/error.h"
#include "io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <sstream>
#include <vector>

namespace onestep {

namespace {
// Whether `dir` holds anything besides the run lock (`lock_file`, empty when none is held).
bool holds_more_than(const std::filesystem::path& dir, const std::filesystem::path& lock_file) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.path() != lock_file) return true;
  return false;
}
}  // namespace

RunDir::RunDir(std::filesystem::path root, RunMode mode, RunLocking locking) : root_(std::move(root)) {
  namespace fs = std::filesystem;
  const bool exists = fs::exists(root_);
  require(!exists || fs::is_directory(root_), "run directory '", root_.string(), "' is a file");
  if (mode == RunMode::Resume)
    require(exists && fs::exists(config_path()), "cannot resume: '", root_.string(), "' holds no run (no config.toml)");
  // The lock comes first: a live writer is refused before this process changes anything.
  if (locking == RunLocking::Lock) {
    fs::create_directories(root_);
    lock_ = std::make_unique<RunLock>(root_);
  }
  const fs::path lock_file = lock_ ? RunLock::file_of(root_) : fs::path();
  switch (mode) {
    case RunMode::New:
      require(!exists || !holds_more_than(root_, lock_file), "run directory '", root_.string(),
              "' already exists: pass --resume to continue it or --force to replace it");
      break;
    case RunMode::Resume:
      resumed_ = true;
      remove_stale_temp_files();
      break;
    case RunMode::Force:
      // Everything but the lock this process holds (removing it would let a second writer in).
      if (exists) {
        std::vector<fs::path> entries;
        for (const auto& entry : fs::directory_iterator(root_))
          if (entry.path() != lock_file) entries.push_back(entry.path());
        for (const auto& path : entries) fs::remove_all(path);
      }
      break;
  }
  fs::create_directories(checkpoints());
  fs::create_directories(samples());
}

namespace {
// "<stem>.tmp.<pid>" with <pid> all digits: the pid, else -1.
long temp_file_pid(const std::string& name, std::string* stem) {
  const auto at = name.rfind(".tmp.");
  if (at == std::string::npos || at + 5 >= name.size()) return -1;
  const std::string digits = name.substr(at + 5);
  if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  *stem = name.substr(0, at);
  return std::stol(digits);
}
bool process_alive(long pid) { return pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM; }
}  // namespace

int RunDir::remove_stale_temp_files() const {
  namespace fs = std::filesystem;
  int removed = 0;
  auto sweep = [&](const fs::path& dir, const std::function<bool(const std::string&)>& ours) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      std::string stem;
      const long pid = temp_file_pid(entry.path().filename().string(), &stem);
      if (pid <= 0 || !ours(stem) || !entry.is_regular_file() || process_alive(pid)) continue;
      if (fs::remove(entry.path(), ec)) ++removed;
    }
  };
  sweep(root_, [this](const std::string& stem) {
    for (const auto& file : {config_path(), metrics_path(), model_path()})
      if (stem == file.filename().string()) return true;
    return false;
  });
  sweep(checkpoints(), [](const std::string& stem) {
    return stem == checkpoint_layout::kLatestPointer || checkpoint_layout::is_checkpoint_file_name(stem);
  });
  return removed;
}

void RunDir::write_config(const Json& effective_config) const {
  write_text_atomically(config_path(), to_toml(effective_config));
}

Json RunDir::read_config() const { return load_toml_file(config_path()); }

MetricsLog::MetricsLog(const std::filesystem::path& path) : path_(path) { open(); }

MetricsLog::~MetricsLog() {
  if (fd_ >= 0) ::close(fd_);
}

void MetricsLog::open() {
  fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  require(fd_ >= 0, "cannot open metrics log '", path_.string(), "': ", std::strerror(errno));
}

void MetricsLog::write(const Json& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  append_whole_or_fail(fd_, record.dump() + "\n", path_, "metrics log");
}

void MetricsLog::truncate_after_step(int64_t step) {
  std::lock_guard<std::mutex> lock(mutex_);
  ::close(fd_);
  fd_ = -1;
  std::string kept;
  {
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      const Json record = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) continue;
      if (record["step"].get<int64_t>() <= step) kept += line + "\n";
    }
  }
  write_text_atomically(path_, kept);
  open();
}

std::filesystem::path follow_checkpoint_pointer(const std::filesystem::path& pointer) {
  std::string name = read_file_bytes(pointer);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r' || name.back() == ' ')) name.pop_back();
  require(!name.empty() && name.find('/') == std::string::npos, pointer.string(), ": malformed checkpoint pointer");
  const std::filesystem::path path = pointer.parent_path() / name;
  require(std::filesystem::exists(path), pointer.string(), " names ", name, ", which does not exist");
  return path;
}

std::filesystem::path resolve_checkpoint_argument(const std::filesystem::path& path) {
  const bool pointer = path.filename() == checkpoint_layout::kLatestPointer && std::filesystem::is_regular_file(path);
  return pointer ? follow_checkpoint_pointer(path) : path;
}

}  // namespace onestep
