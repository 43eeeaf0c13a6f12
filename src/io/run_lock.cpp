#include "io/run_lock.h"

#include "config/config.h"
#include "core/error.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace onestep {
namespace {

std::string host_name() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "unknown";
  return host;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char text[64];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

std::string read_all(int fd) {
  std::string text;
  char buffer[512];
  off_t at = 0;
  while (text.size() < 4096) {
    const ssize_t n = ::pread(fd, buffer, sizeof buffer, at);
    if (n <= 0) break;
    text.append(buffer, static_cast<size_t>(n));
    at += n;
  }
  return text;
}

// Whether `fd` is still the file at `path`: a holder that released between our open() and flock() has removed
// the file, and the lock we got is on an orphan that no later process will see.
bool still_at_path(int fd, const std::filesystem::path& path) {
  struct stat opened{}, named{};
  return ::fstat(fd, &opened) == 0 && ::stat(path.c_str(), &named) == 0 && opened.st_dev == named.st_dev &&
         opened.st_ino == named.st_ino;
}

}  // namespace

std::string RunLock::describe_holder(const std::string& lock_text) {
  const Json holder = Json::parse(lock_text, nullptr, /*allow_exceptions=*/false);
  if (!holder.is_object() || !holder.contains("pid") || !holder["pid"].is_number_integer()) return "";
  std::string out = "pid " + std::to_string(holder["pid"].get<int64_t>());
  if (holder.contains("host") && holder["host"].is_string()) out += " on host " + holder["host"].get<std::string>();
  if (holder.contains("since") && holder["since"].is_string()) out += ", since " + holder["since"].get<std::string>();
  return out;
}

RunLock::RunLock(const std::filesystem::path& dir) : path_(file_of(dir)) {
  for (int attempt = 0; attempt < 16; ++attempt) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    require(fd >= 0, "cannot open the run lock '", path_.string(), "': ", std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      const std::string holder = describe_holder(read_all(fd));
      ::close(fd);
      require(error != EWOULDBLOCK, "run directory '", dir.string(), "' is in use: onestep train (",
              holder.empty() ? std::string("a process that is starting") : holder, ") holds its lock ",
              path_.string(), "; a run has one writer: wait for it to end or stop it");
      fail("cannot lock '", path_.string(), "': ", std::strerror(error),
           " (does the run directory's file system support flock?)");
    }
    if (!still_at_path(fd, path_)) {
      ::close(fd);
      continue;
    }
    // The lock was free: whoever the file still names ended without releasing it (kill -9, a crash).
    if (const std::string previous = describe_holder(read_all(fd)); !previous.empty())
      std::fprintf(stderr, "note: run directory '%s': its lock named %s, which ended without releasing it "
                   "(killed?); taking it over\n", dir.c_str(), previous.c_str());
    const std::string text =
        Json{{"pid", static_cast<int64_t>(::getpid())}, {"host", host_name()}, {"since", utc_now()}}.dump() + "\n";
    const bool written = ::ftruncate(fd, 0) == 0 &&
                         ::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size());
    if (!written) {
      const int error = errno;
      ::close(fd);
      fail("cannot write the run lock '", path_.string(), "': ", std::strerror(error), " (disk full?)");
    }
    fd_ = fd;
    return;
  }
  fail("cannot take the run lock '", path_.string(), "': other processes keep replacing it");
}

RunLock::~RunLock() {
  if (fd_ < 0) return;
  // Removed while still locked, so that no process can lock this file once we let go of it.
  if (still_at_path(fd_, path_)) ::unlink(path_.c_str());
  ::close(fd_);
}

}  // namespace onestep
