#include "io/atomic_file.h"

#include "core/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace onestep {

void write_file_atomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::filesystem::path tmp = path.string() + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      require(out.good(), "cannot write '", tmp.string(), "': ", std::strerror(errno));
      write(out);
      out.flush();
      require(out.good(), "writing '", tmp.string(), "' failed (disk full?)");
    }
    // fsync so that a crash after the rename cannot leave an empty file under the final name.
    int fd = ::open(tmp.c_str(), O_RDONLY);
    if (fd >= 0) {
      ::fsync(fd);
      ::close(fd);
    }
    if (const char* fault = std::getenv("ONESTEP_FAULT_KILL_BEFORE_RENAME");
        fault && *fault && path.filename().string().find(fault) != std::string::npos)
      ::raise(SIGKILL);
    std::filesystem::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

void write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  write_file_atomically(path, [&](std::ostream& out) { out << text; });
}

void append_whole_or_fail(int fd, const std::string& bytes, const std::filesystem::path& path, const char* what) {
  const off_t end = ::lseek(fd, 0, SEEK_END);
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      if (end >= 0 && ::ftruncate(fd, end) != 0) {
        // Nothing more to do: the error below still stops the run; a resume drops a torn last line.
      }
      fail("cannot write ", what, " '", path.string(), "': ", std::strerror(error), " (disk full?)");
    }
    written += static_cast<size_t>(n);
  }
}

std::string read_file_bytes(const std::filesystem::path& path) {
  require(!std::filesystem::is_directory(path), "'", path.string(), "' is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot read '", path.string(), "': ", std::strerror(errno));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace onestep
