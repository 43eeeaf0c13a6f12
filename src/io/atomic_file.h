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

// Reads a whole file; errors name the file.
std::string read_file_bytes(const std::filesystem::path& path);

}  // namespace onestep
