// The ImageNet-64 commands as a user runs them: `onestep info` on the full-size EDM2 presets (counted on the meta
// device, so XL's 1.1e9 parameters cost no memory) next to EDM2's own counts, and `onestep phema` refusing bad input
// with one line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/temp_dir.h"
#include "run_onestep.h"

namespace {

using ::testing::HasSubstr;

TEST(ImageNet64Cli, InfoCountsEveryEdm2SizeAsEdm2Does) {
  const std::vector<std::pair<std::string, std::string>> sizes = {{"xs", "124,710,821"},   {"s", "280,209,253"},
                                                                  {"m", "497,803,045"},    {"l", "777,492,197"},
                                                                  {"xl", "1,119,276,709"}};
  for (const auto& [size, count] : sizes) {
    const auto r = onestep::testing::run_onestep("info --preset edm2-img64-" + size);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("parameters: " + count + " (EDM2's own count for this size: " + count + ")"));
    EXPECT_THAT(r.output, HasSubstr("GFLOP"));
  }
  const auto ect = onestep::testing::run_onestep("info --preset imagenet64-ect-xl");
  EXPECT_THAT(ect.output, HasSubstr("dropout 0.5 at <= 16x16"));
}

TEST(ImageNet64Cli, PhemaRefusesBadInputWithOneLine) {
  onestep::testing::TempDir dir("phema_cli");
  auto r = onestep::testing::run_onestep("phema " + dir.path.string() + " --std 0.05 -o " + (dir / "x.safetensors").string());
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("no snapshots"));
  r = onestep::testing::run_onestep("phema " + (dir / "missing").string() + " --list");
  EXPECT_NE(r.status, 0);
  EXPECT_THAT(r.output, HasSubstr("is not a directory of snapshots"));
}

}  // namespace
