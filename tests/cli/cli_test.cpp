// Runs the real executable: exit codes and one-line errors are part of the interface.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>

namespace {
struct Result {
  int status;
  std::string output;
};
Result run(const std::string& args) {
  std::string cmd = std::string(ONESTEP_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) out.append(buf.data(), n);
  int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}
}  // namespace

using ::testing::HasSubstr;

TEST(Cli, HelpListsSubcommands) {
  Result r = run("--help");
  EXPECT_EQ(r.status, 0);
  for (const char* sub : {"train", "sample", "eval", "info"}) EXPECT_THAT(r.output, HasSubstr(sub));
}

TEST(Cli, EachSubcommandHasHelp) {
  for (const char* sub : {"train", "sample", "eval", "info"}) {
    Result r = run(std::string(sub) + " --help");
    EXPECT_EQ(r.status, 0) << sub;
    EXPECT_THAT(r.output, HasSubstr("--help")) << sub;
  }
}

TEST(Cli, UnknownSubcommandFails) { EXPECT_NE(run("frobnicate").status, 0); }
