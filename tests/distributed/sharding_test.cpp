// Sharded sampling and evaluation: the split of a job's batches over the ranks, and `onestep sample` / `onestep
// eval` run by 2 Gloo processes on localhost against 1 (byte-identical samples, the same numbers).
#include "distributed/processes.h"
#include "data/temp_dir.h"
#include "distributed/backends.h"
#include "distributed/sharding.h"
#include "io/npy.h"
#include "build_paths.h"
#include "config/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <iostream>

namespace onestep {
namespace {

using namespace onestep::testing;
using ::testing::HasSubstr;

TEST(Sharding, RanksTakeContiguousWholeBatchesThatCoverTheJob) {
  // 1000 samples in batches of 128: 8 batches (the last of 104), over 1, 2, 3 and 10 ranks.
  for (int world : {1, 2, 3, 10}) {
    int64_t next = 0;
    for (int rank = 0; rank < world; ++rank) {
      const SampleRange r = rank_samples(1000, 128, rank, world);
      EXPECT_EQ(r.begin, next) << "rank " << rank << " of " << world;
      EXPECT_TRUE(r.begin % 128 == 0 || r.begin == 1000);
      EXPECT_GE(r.end, r.begin);
      next = r.end;
    }
    EXPECT_EQ(next, 1000) << world;
  }
  EXPECT_EQ(rank_samples(1000, 128, 0, 2).end, 512);  // batches 0-3
  EXPECT_EQ(rank_samples(1000, 128, 1, 2).size(), 488);
  EXPECT_EQ(rank_samples(1000, 128, 0, 3).size(), 256);  // 8 batches over 3: 2, 3, 3
  EXPECT_EQ(rank_samples(1000, 128, 0, 10).size(), 0);   // more ranks than batches: some get none
  EXPECT_EQ(own_samples(nullptr, 1000, 128).size(), 1000);
}

const std::vector<std::string> kTinyPoints = {
    "model.hidden=32",     "model.num_layers=2",      "model.noise_channels=16", "data.num_points=2048",
    "train.batch=64",      "train.threads=1",         "train.sample_every=-1",   "train.checkpoint_every=0",
    "model.dropout=0.0"};

// A points-iCT model after 3 steps (its weights are not those of the initialisation).
std::filesystem::path tiny_points_model(const TempDir& dir) {
  std::vector<std::string> args{ONESTEP_BINARY, "train", "--config", "points-ict", "--run", (dir / "run").string(),
                                "--steps", "3"};
  for (const auto& s : kTinyPoints) args.insert(args.end(), {"--set", s});
  std::filesystem::create_directories(dir / "train");
  const auto statuses = run_job(args, 1, dir / "train");
  EXPECT_EQ(statuses, std::vector<int>({0})) << logs_of(dir / "train", 1);
  return dir / "run" / "model.safetensors";
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::vector<std::string> lines;
  std::stringstream text(read_text(path));
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  return lines;
}

TEST(ShardedSampling, TwoProcessesWriteTheSamplesOfOne) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("sharded_sample");
  const auto model = tiny_points_model(dir);
  // 1000 points in 8 batches of 128, 2 steps (the second re-noises with fresh draws of each batch's generator).
  auto sample = [&](const std::string& name, int world) {
    std::filesystem::create_directories(dir / name);
    const std::vector<std::string> args{ONESTEP_BINARY, "sample", "--ckpt", model.string(), "--steps", "2",
                                        "--n", "1000", "--batch", "128", "--seed", "5",
                                        "--out", (dir / (name + ".npy")).string(), "--dist-timeout", "20"};
    const auto statuses = run_job(args, world, dir / name);
    EXPECT_EQ(statuses, std::vector<int>(static_cast<size_t>(world), 0)) << logs_of(dir / name, world);
    return read_text(dir / (name + ".npy"));
  };
  const std::string one = sample("one", 1), two = sample("two", 2), three = sample("three", 3);
  ASSERT_GT(one.size(), 1000u * 2 * 4);
  EXPECT_TRUE(one == two) << "2 processes wrote other samples than 1";
  EXPECT_TRUE(one == three) << "3 processes wrote other samples than 1";
  EXPECT_THAT(read_text(dir / "two" / "rank0.log"), HasSubstr("wrote 1000 samples to"));
  EXPECT_THAT(read_text(dir / "two" / "rank0.log"), HasSubstr("(made by 2 processes)"));
  EXPECT_THAT(read_text(dir / "two" / "rank1.log"), ::testing::Not(HasSubstr("wrote")));  // rank 0 alone writes
  // Not one point repeated: the batches drew distinct latents.
  const torch::Tensor points = read_npy(dir / "one.npy");
  EXPECT_EQ(std::get<0>(at::_unique(points.select(1, 0))).size(0), 1000);
}

TEST(ShardedEvaluation, TwoProcessesGiveTheSwdOfOne) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("sharded_eval");
  const auto model = tiny_points_model(dir);
  auto evaluate = [&](const std::string& name, int world) {
    std::filesystem::create_directories(dir / name);
    const std::vector<std::string> args{
        ONESTEP_BINARY, "eval", "--config", "points-ict", "--ckpt", model.string(), "--metric", "swd",
        "--steps", "1,2", "--n", "1000", "--batch", "128", "--seeds", "2", "--json",
        (dir / (name + ".jsonl")).string(), "--dist-timeout", "20"};
    const auto statuses = run_job(args, world, dir / name);
    EXPECT_EQ(statuses, std::vector<int>(static_cast<size_t>(world), 0)) << logs_of(dir / name, world);
    return read_lines(dir / (name + ".jsonl"));
  };
  const auto one = evaluate("one", 1), two = evaluate("two", 2);
  ASSERT_EQ(one.size(), 4u);  // 1 and 2 steps, 2 seeds
  ASSERT_EQ(two.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) {
    std::cout << "1 process: " << one[i] << "\n2 processes: " << two[i] << "\n";
    const Json a = Json::parse(one[i]), b = Json::parse(two[i]);
    EXPECT_EQ(a["steps"], b["steps"]);
    EXPECT_EQ(a["seed"], b["seed"]);
    // The same points in the same order: the same number, to the last bit.
    EXPECT_EQ(a["value"].get<double>(), b["value"].get<double>()) << one[i] << " vs " << two[i];
  }
  // The seeds give different numbers (the comparison above does not compare constants).
  EXPECT_NE(Json::parse(one[0])["value"].get<double>(), Json::parse(one[1])["value"].get<double>());
  EXPECT_THAT(read_text(dir / "two" / "rank0.log"), HasSubstr("1-step SWD"));
  EXPECT_THAT(read_text(dir / "two" / "rank1.log"), ::testing::Not(HasSubstr("SWD")));  // rank 0 alone reports
}

// A narrow Fashion-MNIST UNet after one step, 200 of its 1-step samples (s.npz) and their statistics (ref.npz),
// made once for the image tests below.
class ShardedImageEvaluation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!gloo_available()) return;
    dir_ = std::make_unique<TempDir>("sharded_fd");
    std::vector<std::string> train{ONESTEP_BINARY, "train", "--config", "fmnist-ict-cpu", "--run",
                                   (*dir_ / "run").string(), "--steps", "1"};
    for (const char* s : {"model.model_channels=8", "train.batch=8", "train.threads=1", "train.sample_every=-1",
                          "train.checkpoint_every=0", "data.subset=64"})
      train.insert(train.end(), {"--set", s});
    job("train", train, 1);
    job("sample", {ONESTEP_BINARY, "sample", "--ckpt", model(), "--n", "200", "--out", (*dir_ / "s.npz").string()}, 1);
    job("stats", {ONESTEP_BINARY, "eval", "stats", "--images", (*dir_ / "s.npz").string(), "--metric", "fd-fmnist",
                  "--device", "cpu", "--out", (*dir_ / "ref.npz").string()}, 1);
  }
  static void TearDownTestSuite() { dir_.reset(); }
  void SetUp() override {
    if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  }

  static void job(const std::string& name, const std::vector<std::string>& args, int world) {
    std::filesystem::create_directories(*dir_ / name);
    EXPECT_EQ(run_job(args, world, *dir_ / name), std::vector<int>(static_cast<size_t>(world), 0))
        << logs_of(*dir_ / name, world);
  }
  static std::string model() { return (*dir_ / "run" / "model.safetensors").string(); }
  // The one value of an evaluation's --json file.
  static double json_value(const std::string& name) {
    const auto lines = read_lines(*dir_ / (name + ".jsonl"));
    EXPECT_EQ(lines.size(), 1u) << name;
    if (!lines.empty()) std::cout << name << ": " << lines[0] << "\n";
    return lines.empty() ? -1.0 : Json::parse(lines[0])["value"].get<double>();
  }
  static std::unique_ptr<TempDir> dir_;
};
std::unique_ptr<TempDir> ShardedImageEvaluation::dir_;

TEST_F(ShardedImageEvaluation, TwoProcessesGiveTheFrechetDistanceAndPrecisionRecallOfOne) {
  // 200 images in batches of 64 (the last of 8) with the 2-step sampler, other seeds than the reference's.
  auto evaluate = [&](const std::string& name, int world) {
    job(name,
        {ONESTEP_BINARY, "eval", "--ckpt", model(), "--metric", "fd-fmnist", "--ref", (*dir_ / "ref.npz").string(),
         "--steps", "2", "--n", "200", "--batch", "64", "--set", "eval.seed=7", "--pr", "--real",
         (*dir_ / "s.npz").string(), "--device", "cpu", "--json", (*dir_ / (name + ".jsonl")).string(),
         "--dist-timeout", "20"},
        world);
    return json_value(name);
  };
  const double one = evaluate("one", 1), two = evaluate("two", 2);
  EXPECT_GT(one, 0);
  EXPECT_EQ(one, two);  // the same features, gathered in order: the same statistics to the last bit
  // Precision and recall from the gathered features: the same lines.
  auto pr_line = [&](const std::string& name) {
    const std::string log = read_text(*dir_ / name / "rank0.log");
    const auto at = log.find("precision");
    return at == std::string::npos ? std::string("(none)") : log.substr(at, log.find('\n', at) - at);
  };
  EXPECT_EQ(pr_line("one"), pr_line("two"));
  EXPECT_NE(pr_line("two"), "(none)");
}

TEST_F(ShardedImageEvaluation, TwoProcessesGiveTheFrechetDistanceOfExistingImagesAsOne) {
  // 200 images in batches of 128 (rank 1 takes the second, short one) and in one batch of 256 (rank 1 has none).
  auto evaluate = [&](const std::string& name, int world, const std::string& batch) {
    job(name,
        {ONESTEP_BINARY, "eval", "--images", (*dir_ / "s.npz").string(), "--metric", "fd-fmnist", "--ref",
         (*dir_ / "ref.npz").string(), "--batch", batch, "--device", "cpu", "--json",
         (*dir_ / (name + ".jsonl")).string(), "--dist-timeout", "20"},
        world);
    return json_value(name);
  };
  const double one = evaluate("images_one", 1, "128");
  EXPECT_NEAR(one, 0.0, 1e-6);  // the images the reference was made of
  EXPECT_EQ(evaluate("images_two", 2, "128"), one);
  EXPECT_EQ(evaluate("images_two_one_batch", 2, "256"), one);
}

}  // namespace
}  // namespace onestep
