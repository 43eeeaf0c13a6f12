#pragma once
// Runs the real `onestep` executable: exit codes and one-line errors are part of the interface.
#include "build_paths.h"
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace onestep::testing {

struct CommandResult {
  int status;          // exit code
  std::string output;  // stdout and stderr together
};

inline CommandResult run_onestep(const std::string& args) {
  const std::string command = std::string(ONESTEP_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  std::array<char, 4096> buffer{};
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  return {WEXITSTATUS(status), output};
}

// `onestep ARGS`, the short name the CLI tests use.
inline CommandResult run(const std::string& args) { return run_onestep(args); }

}  // namespace onestep::testing
