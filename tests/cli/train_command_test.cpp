// `onestep train` through the real executable: errors are one line and exit 1; a tiny run trains and resumes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "run_onestep.h"
#include "test_device.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {
using Result = onestep::testing::CommandResult;
using onestep::testing::run;

struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / ("onestep-train-cli-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Self-contained (no preset include): a tiny EDM run on 2-D points.
std::string write_config(const fs::path& dir) {
  const fs::path file = dir / "tiny.toml";
  std::ofstream(file) << "[model]\narch = \"mlp\"\nin_dim = 2\nhidden = 16\nnum_layers = 2\nnoise_channels = 8\n"
                         "dropout = 0.1\n[precond]\ntrain_scalings = \"edm\"\nsample_scalings = \"edm\"\n"
                         "[data]\ndataset = \"eight-gaussians\"\nnum_points = 1000\n[objective]\nmethod = \"edm\"\n"
                         "[train]\nsteps = 3\nbatch = 16\noptimizer = \"adam\"\nlr = 1e-3\nema = [0.9]\n"
                         "checkpoint_every = 2\nsample_count = 16\nlog_every = 1\ndevice = \"" +
                             onestep::testing::test_device_name() + "\"\n"
                         "[sample]\nkind = \"euler\"\nsteps = 4\n";
  return file.string();
}
}  // namespace

TEST(TrainCommand, UnknownKeyIsRejectedBeforeAnythingIsWritten) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  Result r = run("train --config " + config + " --set train.stepz=3 --run " + (tmp.path / "run").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("stepz"));
  EXPECT_FALSE(fs::exists(tmp.path / "run"));
  r = run("train --config " + config + " --set bogus.key=1 --run " + (tmp.path / "run").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bogus"));
}

TEST(TrainCommand, ExistingRunNeedsResumeOrForce) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  fs::create_directories(tmp.path / "run");
  std::ofstream(tmp.path / "run" / "metrics.jsonl") << "{}\n";
  Result r = run("train --config " + config + " --run " + (tmp.path / "run").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("onestep: error:"));
}

TEST(TrainCommand, ResumeOfMissingRunFails) {
  TempDir tmp;
  Result r = run("train --resume --run " + (tmp.path / "nope").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("does not exist"));
}

TEST(TrainCommand, TinyRunTrainsResumesAndExportsTheEma) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const auto run_dir = tmp.path / "run";
  Result r = run("train --config " + config + " --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(run_dir / "config.toml"));
  EXPECT_TRUE(fs::exists(run_dir / "model.safetensors"));
  EXPECT_TRUE(fs::exists(run_dir / "checkpoints" / "ckpt-00000003.safetensors"));
  r = run("train --resume --steps 5 --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("at step 3"));
  EXPECT_TRUE(fs::exists(run_dir / "checkpoints" / "ckpt-00000005.safetensors"));
  // --init with a mismatched architecture is a clear error.
  r = run("train --config " + config + " --set model.hidden=32 --init " + (run_dir / "model.safetensors").string() +
          " --run " + (tmp.path / "other").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("architectures differ"));
}

// The trainer's evaluation hook through the CLI, then `onestep eval` on the same 2-D model (SWD path).
TEST(TrainCommand, PeriodicEvaluationGoesIntoTheMetricsLog) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const auto run_dir = tmp.path / "run";
  Result r = run("train --config " + config + " --set eval.every=2 --set eval.metric=swd --set eval.n=300" +
                 " --set eval.steps=[4] --set train.steps=4 --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream metrics(run_dir / "metrics.jsonl");
  std::string line;
  int evaluations = 0;
  while (std::getline(metrics, line))
    if (line.find("\"swd_4step\":") != std::string::npos) ++evaluations;
  EXPECT_EQ(evaluations, 2);  // steps 2 and 4

  const std::string model = (run_dir / "model.safetensors").string();
  r = run("eval --config " + config + " --ckpt " + model + " --metric swd --steps 4 --n 300 --seeds 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("SWD floor (two fresh draws of 300 points)"));
  EXPECT_THAT(r.output, HasSubstr("4-step SWD (n = 300, 2 seeds)"));
  // A wrong step count for the sampler fails before any sampling.
  r = run("eval --config " + config + " --ckpt " + model + " --metric swd --steps 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("2 or more steps"));
  // An image metric on a points model is refused with a clear message.
  r = run("eval --config " + config + " --ckpt " + model + " --metric swd --steps 4 --n 300 --pr");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("--pr is for image metrics"));
}
