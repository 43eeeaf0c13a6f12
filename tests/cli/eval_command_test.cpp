// `onestep eval`: options, one-line errors for missing files, and the statistics/distance round trip.
#include "io/npy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "run_onestep.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace {

namespace fs = std::filesystem;

using Result = onestep::testing::CommandResult;
using onestep::testing::run;

using ::testing::HasSubstr;

TEST(EvalCommand, HelpShowsSubcommandsAndExamples) {
  const auto r = run("eval --help");
  EXPECT_EQ(r.status, 0);
  for (const char* word : {"stats", "train-classifier", "--ckpt", "--images", "--ref", "--seeds", "Examples"})
    EXPECT_THAT(r.output, HasSubstr(word));
  EXPECT_EQ(run("eval stats --help").status, 0);
}

TEST(EvalCommand, FidWithoutDetectorSaysWhereToGetIt) {
  const auto r = run("eval --images /nonexistent.npz --metric fid --ref /nonexistent-ref.npz");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("onestep: error: FID needs the Inception weights"));
  EXPECT_THAT(r.output, HasSubstr("docs/evaluation.md"));
}

TEST(EvalCommand, MissingDetectorFileIsNamed) {
  const auto r = run("eval --images x.npz --metric fid --detector /nonexistent/inception-2015-12-05.pt --ref r.npz");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/inception-2015-12-05.pt"));
  // One line of error (on busy cores a note about the OpenMP wait policy comes first: core/cpu_wait.h).
  std::string error = r.output;
  if (error.rfind("note: ", 0) == 0) error = error.substr(error.find('\n') + 1);
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << r.output;
}

TEST(EvalCommand, NeedsExactlyOneSource) {
  const auto r = run("eval --metric fd-fmnist");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("exactly one of --ckpt"));
}

TEST(EvalCommand, MissingReferenceFileIsNamed) {
  // The images are read first (their shape picks and names the metric), then the reference.
  const fs::path dir = fs::temp_directory_path() / ("onestep_eval_cli_ref_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  onestep::write_npz(dir / "images.npz", {{"arr_0", torch::zeros({4, 28, 28, 1}, torch::kUInt8)}});
  const auto r = run("eval --images " + (dir / "images.npz").string() + " --ref /nonexistent-ref.npz");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent-ref.npz"));
  fs::remove_all(dir);
}

// Statistics made with another detector: the dimensions and the flags that pair them.
TEST(EvalCommand, ReferenceOfAnotherDetectorNamesTheFlags) {
  const fs::path dir = fs::temp_directory_path() / ("onestep_eval_cli_dim_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  onestep::write_npz(dir / "inception.npz", {{"mu", torch::zeros({2048}, f64)}, {"sigma", torch::eye(2048, f64)}});
  onestep::write_npz(dir / "images.npz", {{"arr_0", torch::zeros({4, 28, 28, 1}, torch::kUInt8)}});
  const auto r = run("eval --images " + (dir / "images.npz").string() + " --ref " + (dir / "inception.npz").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("holds 2048-d statistics but --metric fd-fmnist gives 128-d features"));
  EXPECT_THAT(r.output, HasSubstr("--metric fid --detector inception-2015-12-05.pt"));
  fs::remove_all(dir);
}

TEST(EvalCommand, FdOfTwoStatisticsFiles) {
  const fs::path dir = fs::temp_directory_path() / ("onestep_eval_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // FD(N(0, diag(1, 4)), N((3, 0), diag(4, 1))) = 9 + (1 - 2)^2 + (2 - 1)^2 = 11.
  onestep::write_npz(dir / "a.npz", {{"mu", torch::zeros({2}, f64)}, {"sigma", torch::diag(torch::tensor({1.0, 4.0}, f64))}});
  onestep::write_npz(dir / "b.npz", {{"mu", torch::tensor({3.0, 0.0}, f64)}, {"sigma", torch::diag(torch::tensor({4.0, 1.0}, f64))}});
  const auto r = run("eval fd " + (dir / "a.npz").string() + " " + (dir / "b.npz").string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NEAR(std::stod(r.output), 11.0, 1e-9);
  fs::remove_all(dir);
}

TEST(EvalCommand, ImagesAgainstTheirOwnStatisticsGiveZero) {
  // stats of an .npz of images, then evaluating the same images against them: FD-FMNIST ~ 0.
  const fs::path dir = fs::temp_directory_path() / ("onestep_eval_cli2_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  torch::manual_seed(11);
  onestep::write_npz(dir / "images.npz", {{"arr_0", torch::randint(0, 256, {64, 28, 28, 1}, torch::kUInt8)}});
  const auto images = (dir / "images.npz").string();
  const auto ref = (dir / "ref.npz").string();
  const auto s = run("eval stats --images " + images + " --out " + ref);
  ASSERT_EQ(s.status, 0) << s.output;
  const auto r = run("eval --images " + images + " --ref " + ref);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("FD-FMNIST of 64 images"));
  const auto value = std::stod(r.output.substr(r.output.rfind(':') + 1));
  EXPECT_NEAR(value, 0.0, 1e-4);
  fs::remove_all(dir);
}

}  // namespace
