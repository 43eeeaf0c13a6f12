#pragma once
// Files that are either completely written or not there: write to "<path>.tmp.<pid>", fsync, rename.
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

namespace onestep {

// Calls `write` with a stream on a temporary file beside `path`, then renames it over `path`.
// If `write` throws, the temporary file is removed and `path` is untouched.
// Fault injection for the kill tests (tests/cli/kill_resume_test.sh): when the environment variable
// ONESTEP_FAULT_KILL_BEFORE_RENAME is set and `path`'s file name contains its value, the process kills itself with
// SIGKILL after writing the temporary file and before the rename, as a kill -9 during the write would.
void write_file_atomically(const std::filesystem::path& path, const std::function<void(std::ostream&)>& write);
void write_text_atomically(const std::filesystem::path& path, const std::string& text);

// Appends `bytes` to the file open as `fd` (O_APPEND) whole or not at all: a write that fails part-way (disk full,
// a file-size limit) is cut back to the file's previous end, so that a log never keeps a torn record; the error
// names `what` and `path` and asks "disk full?", as the checkpoint path does.
void append_whole_or_fail(int fd, const std::string& bytes, const std::filesystem::path& path, const char* what);

// Reads a whole file; errors name the file.
std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace onestep
