// `onestep info` run as a subprocess: output, exit codes and one-line errors.
#include "distributed/backends.h"
#include "precond/model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "run_onestep.h"

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

using ::testing::HasSubstr;

namespace {
using Result = onestep::testing::CommandResult;
Result run_info(const std::string& args) { return onestep::testing::run_onestep("info " + args); }
}  // namespace

TEST(InfoCommand, PresetSummaryCountsParametersAndCost) {
  Result r = run_info("--preset unet-fmnist-cpu");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("SongUNet (ddpmpp): 1x28x28"));
  EXPECT_THAT(r.output, HasSubstr("14x14: 32 channels, 1 encoder + 2 decoder blocks, attention no"));
  EXPECT_THAT(r.output, HasSubstr("parameters: "));
  EXPECT_THAT(r.output, HasSubstr("GFLOP"));
  EXPECT_THAT(r.output, HasSubstr("sigma_min 0.002"));
}

TEST(InfoCommand, ConfigWithOverride) {
  Result r = run_info("--config mlp-2d --set model.hidden=32 --set model.num_layers=2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("MLP: 2 -> 2 x 32"));
  // 2080 (64->32) + 1056 (32->32) + 96 (2->32) + 2 x 1056 + 66 (32->2) = 5410
  EXPECT_THAT(r.output, HasSubstr("parameters: 5,410"));
}

TEST(InfoCommand, CheckpointWithoutArchitectureArguments) {
  const auto path = std::filesystem::temp_directory_path() / ("onestep_info_" + std::to_string(::getpid()) + ".st");
  onestep::Json root{{"model", {{"arch", "mlp"}, {"hidden", 16}, {"num_layers", 1}}}, {"precond", {{"sigma_min", 0.003}}}};
  auto model = onestep::build_model(root);
  onestep::save_model(path, model);
  Result r = run_info("--ckpt " + path.string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("MLP: 2 -> 1 x 16"));
  EXPECT_THAT(r.output, HasSubstr("sigma_min 0.003"));
  std::filesystem::remove(path);
}

TEST(InfoCommand, BuildSaysWhichDataParallelBackendsAreBuiltIn) {
  Result r = run_info("--build");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("LibTorch 2."));
  EXPECT_THAT(r.output, HasSubstr(onestep::nccl_available() ? "data parallel: NCCL yes" : "data parallel: NCCL no"));
  EXPECT_THAT(r.output, HasSubstr(onestep::gloo_available() ? "Gloo yes" : "Gloo no"));
#ifndef ONESTEP_WITH_CUDA
  EXPECT_THAT(r.output, HasSubstr("CUDA: not built in"));
#endif
  EXPECT_EQ(run_info("--build --preset mlp-2d").status, 1);
}

TEST(InfoCommand, BadInputIsAOneLineError) {
  Result none = run_info("");
  EXPECT_EQ(none.status, 1);
  EXPECT_THAT(none.output, HasSubstr("onestep: error: info: give exactly one of"));
  Result missing = run_info("--ckpt /nonexistent.safetensors");
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.output, HasSubstr("/nonexistent.safetensors"));
  Result bad_key = run_info("--preset mlp-2d --set model.hiden=3");
  EXPECT_EQ(bad_key.status, 1);
  EXPECT_THAT(bad_key.output, HasSubstr("hiden"));
  Result help = run_info("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_THAT(help.output, HasSubstr("onestep info --preset ddpmpp-cifar10"));
}
