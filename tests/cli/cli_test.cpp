// Runs the real executable: exit codes and one-line errors are part of the interface.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "run_onestep.h"

#include <array>
#include <cstdio>
#include <string>

namespace {
using Result = onestep::testing::CommandResult;
using onestep::testing::run;
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
