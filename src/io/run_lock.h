#pragma once
// One run, one writer: the process that trains a run directory holds an advisory lock on its file "lock"
// (flock(2), which the kernel releases when the process ends, however it ends). The file names the holder (pid,
// host, start time), so that a second `train` on the same directory — new, --force or --resume — is refused
// naming who holds it, before it writes anything. A lock file left by a process that is gone (kill -9, a crash)
// is detected by the lock being free and taken over with a note.
#include <filesystem>
#include <string>

namespace onestep {

class RunLock {
 public:
  // Takes the lock of run directory `dir` (which must exist) or throws an onestep::Error naming the live holder.
  explicit RunLock(const std::filesystem::path& dir);
  // Releases: removes the lock file, then unlocks.
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  static constexpr const char* kFileName = "lock";
  static std::filesystem::path file_of(const std::filesystem::path& dir) { return dir / kFileName; }
  // "pid 1234 on host h, since 2026-01-01 12:00:00 UTC" from a lock file's text; empty when it names no one.
  static std::string describe_holder(const std::string& lock_text);

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

}  // namespace onestep
