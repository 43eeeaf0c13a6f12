// The ImageNet-64 commands as a user runs them: `onestep info` on the full-size EDM2 and ADM presets (counted on the
// meta device, so XL's 1.1e9 parameters cost no memory) next to the references' own counts, `onestep sample` on a
// converted consistency-model release checkpoint, and `onestep phema` refusing bad input with one line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "build_paths.h"
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

TEST(ImageNet64Cli, InfoCountsBothAdmPresetsAsTheReleaseDoes) {
  for (const auto& [preset, count] : std::vector<std::pair<std::string, std::string>>{
           {"adm-img64", "295,899,267"}, {"adm-img64-deep", "495,357,699"}, {"imagenet64-ict-deep", "495,357,699"}}) {
    const auto r = onestep::testing::run_onestep("info --preset " + preset);
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr("parameters: " + count + " (the consistency-model release's own count: " + count));
    EXPECT_THAT(r.output, HasSubstr("GFLOP"));
  }
}

// A converted release checkpoint samples with the schedule the converter recorded: `--steps 2` is the release's
// multistep ts 0,22,39 of 40 levels (sigmas 80 and 1.38237), with its clamping; a class for every sample.
TEST(ImageNet64Cli, SampleUsesTheRecordedReleaseSchedule) {
  onestep::testing::TempDir dir("adm_sample_cli");
  const std::string fixture = std::string(ONESTEP_TEST_FIXTURES) + "/networks/adm_unet_small.safetensors";
  const auto r = onestep::testing::run_onestep("sample --ckpt " + fixture + " --weights net. --class 3 --steps 2 --n 2 "
                                               "--out " + (dir / "x.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sampling consistency, sigmas 80, 1.38237"));
  EXPECT_TRUE(std::filesystem::exists(dir / "x.npy"));
  const auto bad = onestep::testing::run_onestep("sample --ckpt " + fixture + " --weights net. --class 10 --n 1 --out " +
                                                 (dir / "y.npy").string());
  EXPECT_NE(bad.status, 0);
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
