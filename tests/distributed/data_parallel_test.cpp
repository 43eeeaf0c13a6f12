// Data parallel on c10d's Gloo backend, two real processes on localhost against one:
// the averaged gradient, 20 steps of weights, a 2-process checkpoint resumed by 1 process, a killed rank.
// A tiny points-iCT configuration (dropout 0) keeps the whole suite to seconds.
#include "distributed/processes.h"
#include "data/temp_dir.h"
#include "distributed/backends.h"
#include "io/run_dir.h"
#include "io/safetensors.h"
#include "build_paths.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <iostream>

namespace onestep {
namespace {

using namespace onestep::testing;
using ::testing::HasSubstr;

const std::vector<std::string> kTinyPoints = {
    "model.hidden=32",       "model.num_layers=2",     "model.noise_channels=16", "data.num_points=4096",
    "train.batch=64",        "train.threads=1",        "train.log_every=5",       "train.sample_every=-1",
    "train.checkpoint_every=10", "train.keep_checkpoints=5", "model.dropout=0.0",
    // The batch-posterior target is taken over each process's rows (docs/methods.md), so N processes equal one only
    // with the papers' single-sample target.
    "objective.target_estimate=\"single_sample\""};

std::vector<std::string> train_args(const std::filesystem::path& run, int64_t steps, bool resume = false,
                                    int64_t batch_per_gpu = 0) {
  std::vector<std::string> args{ONESTEP_BINARY, "train", "--run", run.string(), "--steps", std::to_string(steps),
                                "--dist-timeout", "20"};
  if (resume) {
    args.push_back("--resume");
    return args;
  }
  args.insert(args.end(), {"--config", "points-ict"});
  for (const auto& s : kTinyPoints) args.insert(args.end(), {"--set", s});
  if (batch_per_gpu > 0) args.insert(args.end(), {"--set", "train.batch_per_gpu=" + std::to_string(batch_per_gpu)});
  return args;
}

bool starts_with(const std::string& name, const std::string& prefix) { return name.rfind(prefix, 0) == 0; }

// Which tensors of a training checkpoint to compare: "weights" (the raw model), "ema", or "" (all).
bool selected(const std::string& name, const std::string& which) {
  if (which == "ema") return starts_with(name, "ema.");
  if (which == "weights")
    return !starts_with(name, "ema.") && !starts_with(name, "optim.") && !starts_with(name, "rng.") &&
           !starts_with(name, "objective.");
  return true;
}

// max over the selected tensors of ||a - b|| / ||b|| (every one of `b`, which `a` must have too).
double max_relative_difference(const SafetensorsContent& a, const SafetensorsContent& b, const std::string& which,
                               std::string* worst = nullptr) {
  double max_rel = 0;
  for (const auto& [name, tb] : b.tensors) {
    if (!selected(name, which)) continue;
    const torch::Tensor* ta = a.find(name);
    EXPECT_NE(ta, nullptr) << name;
    if (ta == nullptr) continue;
    const double denom = tb.to(torch::kFloat64).norm().item<double>() + 1e-12;
    const double rel = (ta->to(torch::kFloat64) - tb.to(torch::kFloat64)).norm().item<double>() / denom;
    if (rel > max_rel) {
      max_rel = rel;
      if (worst) *worst = name;
    }
  }
  return max_rel;
}

TEST(DataParallel, TwoProcessAveragedGradientEqualsOneProcessGradient) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("dp_gradient");
  auto worker = [&](const std::string& name, int64_t batch_per_gpu = 0) {
    return std::vector<std::string>{ONESTEP_GRADIENT_WORKER, (dir / name).string(),
                                    (dir / (name + ".safetensors")).string(),
                                    "--set", "model.hidden=32", "--set", "model.num_layers=2",
                                    "--set", "data.num_points=4096", "--set", "train.batch=64",
                                    "--set", "train.batch_per_gpu=" + std::to_string(batch_per_gpu)};
  };
  for (const char* d : {"one", "two", "two_accumulated"}) std::filesystem::create_directories(dir / d);
  ASSERT_EQ(run_job(worker("one"), 1, dir / "one"), std::vector<int>({0})) << logs_of(dir / "one", 1);
  ASSERT_EQ(run_job(worker("two"), 2, dir / "two"), std::vector<int>({0, 0})) << logs_of(dir / "two", 2);
  // Gradient accumulation: each rank's 32 rows as micro-batches of 12 + 12 + 8.
  ASSERT_EQ(run_job(worker("two_accumulated", 12), 2, dir / "two_accumulated"), std::vector<int>({0, 0}))
      << logs_of(dir / "two_accumulated", 2);
  const SafetensorsContent one = load_safetensors(dir / "one.safetensors");
  const SafetensorsContent two = load_safetensors(dir / "two.safetensors");
  ASSERT_EQ(one.tensors.size(), two.tensors.size());
  ASSERT_GT(one.tensors.size(), 4u);
  std::string worst;
  const double rel = max_relative_difference(two, one, "", &worst);
  std::cout << "max relative gradient difference, 2 vs 1 processes: " << rel << " (" << worst << ")\n";
  EXPECT_LT(rel, 1e-6) << worst;
  const double rel_accumulated =
      max_relative_difference(load_safetensors(dir / "two_accumulated.safetensors"), one, "", &worst);
  std::cout << "max relative gradient difference, 2 processes x (12 + 12 + 8) vs 1 x 64: " << rel_accumulated
            << " (" << worst << ")\n";
  EXPECT_LT(rel_accumulated, 1e-6) << worst;
  // Not trivially equal: the halves of the batch have different gradients (so a rank that skipped the
  // all-reduce, or averaged wrongly, would fail above).
  EXPECT_GT(one.tensors.front().second.abs().sum().item<double>(), 0);
}

// The 20-step tests compare against one 1-process run of 20 steps, trained once for the suite.
class DataParallelSteps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!gloo_available()) return;
    reference_ = std::make_unique<TempDir>("dp_one_process");
    std::filesystem::create_directories(*reference_ / "one");
    reference_statuses_ = run_job(train_args(*reference_ / "run1", 20), 1, *reference_ / "one");
  }
  static void TearDownTestSuite() { reference_.reset(); }
  void SetUp() override {
    if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
    ASSERT_EQ(reference_statuses_, std::vector<int>({0})) << logs_of(*reference_ / "one", 1);
  }
  // The 1-process run's directory (its checkpoints and metrics.jsonl).
  static std::filesystem::path one_process_run() { return *reference_ / "run1"; }

  static std::unique_ptr<TempDir> reference_;
  static std::vector<int> reference_statuses_;
};
std::unique_ptr<TempDir> DataParallelSteps::reference_;
std::vector<int> DataParallelSteps::reference_statuses_;

TEST_F(DataParallelSteps, TwentyStepsOfTwoProcessesMatchOneProcessAndResumeInOne) {
  TempDir dir("dp_steps");
  for (const char* d : {"two", "resumed"}) std::filesystem::create_directories(dir / d);
  ASSERT_EQ(run_job(train_args(dir / "run2", 20), 2, dir / "two"), std::vector<int>({0, 0}))
      << logs_of(dir / "two", 2);
  EXPECT_THAT(read_text(dir / "two" / "rank0.log"), HasSubstr("data parallel: 2 processes"));

  const SafetensorsContent one = load_safetensors(one_process_run() / "checkpoints" / "ckpt-00000020.safetensors");
  const SafetensorsContent two = load_safetensors(dir / "run2" / "checkpoints" / "ckpt-00000020.safetensors");
  // Float tolerance: the two runs sum the batch in different orders (two halves, then the all-reduce), so
  // gradients differ in the last bits (1e-7 relative) and 20 RAdam steps carry that through.
  std::string worst;
  const double weights_rel = max_relative_difference(two, one, "weights", &worst);
  std::cout << "max relative weight difference after 20 steps, 2 vs 1 processes: " << weights_rel << "\n";
  EXPECT_LT(weights_rel, 1e-5) << worst;
  EXPECT_LT(max_relative_difference(two, one, "ema", &worst), 1e-5) << worst;
  // Only rank 0 writes: one metrics line per log step, with the step counts of the global batch.
  const std::string metrics = read_text(dir / "run2" / "metrics.jsonl");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4) << metrics;
  EXPECT_THAT(metrics, HasSubstr("\"images_seen\":1280"));

  // The 2-process run's step-10 checkpoint, resumed by one process to step 20.
  std::filesystem::copy(dir / "run2", dir / "run3", std::filesystem::copy_options::recursive);
  for (const auto& entry : std::filesystem::directory_iterator(dir / "run3" / "checkpoints"))
    if (entry.path().filename() == "ckpt-00000020.safetensors") std::filesystem::remove(entry.path());
  write_bytes(dir / "run3" / "checkpoints" / "latest", "ckpt-00000010.safetensors\n");
  ASSERT_EQ(run_job(train_args(dir / "run3", 20, /*resume=*/true), 1, dir / "resumed"), std::vector<int>({0}))
      << logs_of(dir / "resumed", 1);
  EXPECT_THAT(read_text(dir / "resumed" / "rank0.log"), HasSubstr("resuming"));
  const SafetensorsContent resumed = load_safetensors(dir / "run3" / "checkpoints" / "ckpt-00000020.safetensors");
  EXPECT_LT(max_relative_difference(resumed, one, "weights", &worst), 1e-5) << worst;
  EXPECT_LT(max_relative_difference(resumed, two, "weights", &worst), 1e-5) << worst;
}

TEST_F(DataParallelSteps, TwentyStepsOfTwoProcessesWithGradientAccumulationMatchOneProcess) {
  TempDir dir("dp_accumulation");
  std::filesystem::create_directories(dir / "two");
  // train.batch_per_gpu = 8: each rank runs its 32 rows as 4 micro-batches per step.
  ASSERT_EQ(run_job(train_args(dir / "run2", 20, false, 8), 2, dir / "two"), std::vector<int>({0, 0}))
      << logs_of(dir / "two", 2);
  EXPECT_THAT(read_text(dir / "two" / "rank0.log"), HasSubstr("gradient accumulation: 4 micro-batches"));
  const SafetensorsContent one = load_safetensors(one_process_run() / "checkpoints" / "ckpt-00000020.safetensors");
  const SafetensorsContent two = load_safetensors(dir / "run2" / "checkpoints" / "ckpt-00000020.safetensors");
  std::string worst;
  const double weights_rel = max_relative_difference(two, one, "weights", &worst);
  std::cout << "max relative weight difference after 20 steps, 2 processes x 4 micro-batches vs 1: " << weights_rel
            << "\n";
  EXPECT_LT(weights_rel, 1e-5) << worst;
  EXPECT_LT(max_relative_difference(two, one, "ema", &worst), 1e-5) << worst;
  // The logged losses are the global batch's.
  auto losses = [](const std::string& metrics) {
    std::vector<double> out;
    std::stringstream lines(metrics);
    for (std::string line; std::getline(lines, line);) out.push_back(Json::parse(line).at("loss").get<double>());
    return out;
  };
  const auto a = losses(read_text(one_process_run() / "metrics.jsonl")), b = losses(read_text(dir / "run2" / "metrics.jsonl"));
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), a.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(b[i], a[i], 1e-5 * std::abs(a[i])) << "log line " << i;
}

TEST(DataParallel, KilledRankEndsTheOtherWithAClearError) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("dp_kill");
  const int port = free_port();
  auto args = train_args(dir / "run", 100000);
  args[std::find(args.begin(), args.end(), "--dist-timeout") - args.begin() + 1] = "10";
  const Child rank0 = spawn(args, rank_env(0, 2, port), dir / "rank0.log");
  const Child rank1 = spawn(args, rank_env(1, 2, port), dir / "rank1.log");
  // Wait until training runs (rank 0 has logged a step), then kill rank 1 without warning.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (read_text(dir / "run" / "metrics.jsonl").empty() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_FALSE(read_text(dir / "run" / "metrics.jsonl").empty()) << logs_of(dir.path, 2);
  ::kill(rank1.pid, SIGKILL);
  const auto killed_at = std::chrono::steady_clock::now();
  EXPECT_EQ(wait_for(rank1, std::chrono::seconds(5)), 128 + SIGKILL);
  const int status = wait_for(rank0, std::chrono::seconds(25));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  const std::string log = read_text(dir / "rank0.log");
  EXPECT_EQ(status, 1) << log;
  std::cout << "rank 0 stopped " << seconds << " s after rank 1 was killed\n";
  EXPECT_LT(seconds, 15.0) << log;  // within the 10 s timeout (and the time to notice)
  EXPECT_THAT(log, HasSubstr("onestep: error: distributed"));
  EXPECT_THAT(log, HasSubstr("failed on rank 0 of 2"));
  EXPECT_THAT(log, HasSubstr("another rank has probably died"));
}

TEST(DataParallel, LaunchRunsTheRanksAndReportsAFailure) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("dp_launch");
  std::vector<std::string> args{ONESTEP_BINARY, "launch", "--nproc", "2", "--"};
  const auto train = train_args(dir / "run", 5);
  args.insert(args.end(), train.begin() + 1, train.end());
  const Child ok = spawn(args, {{"OMP_NUM_THREADS", "1"}}, dir / "launch.log");
  ASSERT_EQ(wait_for(ok, std::chrono::seconds(60)), 0) << read_text(dir / "launch.log");
  EXPECT_THAT(read_text(dir / "launch.log"), HasSubstr("data parallel: 2 processes, gloo"));
  EXPECT_TRUE(std::filesystem::exists(dir / "run" / "checkpoints" / "ckpt-00000005.safetensors"));

  // A batch that does not split over the ranks: every rank says so, launch exits non-zero.
  std::vector<std::string> bad{ONESTEP_BINARY, "launch", "--nproc", "3", "--grace", "5", "--"};
  const auto train_bad = train_args(dir / "run_bad", 5);
  bad.insert(bad.end(), train_bad.begin() + 1, train_bad.end());
  const Child failing = spawn(bad, {{"OMP_NUM_THREADS", "1"}}, dir / "bad.log");
  EXPECT_EQ(wait_for(failing, std::chrono::seconds(30)), 1);
  EXPECT_THAT(read_text(dir / "bad.log"), HasSubstr("train.batch = 64 (the global batch) is not divisible by"));
  EXPECT_THAT(read_text(dir / "bad.log"), HasSubstr("onestep launch: rank"));
}

TEST(DataParallel, BadLaunchEnvironmentOrAMissingRankIsOneErrorLine) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("dp_env");
  auto args = train_args(dir / "run", 5);
  auto env = rank_env(0, 2, free_port());
  env.erase("MASTER_ADDR");
  const Child no_addr = spawn(args, env, dir / "no_addr.log");
  EXPECT_EQ(wait_for(no_addr, std::chrono::seconds(30)), 1);
  EXPECT_THAT(read_text(dir / "no_addr.log"),
              HasSubstr("onestep: error: environment: WORLD_SIZE=2 but MASTER_ADDR is not set"));

  // NCCL asked for where it cannot run (a build without it, or CPU tensors): one line, before any rendezvous.
  auto nccl_args = train_args(dir / "run_nccl", 5);
  nccl_args.insert(nccl_args.end(), {"--dist-backend", "nccl"});
  const Child nccl = spawn(nccl_args, rank_env(0, 2, free_port()), dir / "nccl.log");
  EXPECT_EQ(wait_for(nccl, std::chrono::seconds(30)), 1) << read_text(dir / "nccl.log");
  EXPECT_THAT(read_text(dir / "nccl.log"), HasSubstr("onestep: error: --dist-backend nccl"));

  // Rank 1 never comes: the rendezvous gives up after the timeout instead of hanging.
  args[std::find(args.begin(), args.end(), "--dist-timeout") - args.begin() + 1] = "2";
  const Child alone = spawn(args, rank_env(0, 2, free_port()), dir / "alone.log");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(wait_for(alone, std::chrono::seconds(30)), 1) << read_text(dir / "alone.log");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 15.0);
  EXPECT_THAT(read_text(dir / "alone.log"), HasSubstr("onestep: error: distributed rendezvous failed on rank 0 of 2"));
}

TEST(DataParallel, LaunchRejectsBadArguments) {
  TempDir dir("dp_launch_args");
  auto run = [&](const std::vector<std::string>& args) {
    std::vector<std::string> all{ONESTEP_BINARY, "launch"};
    all.insert(all.end(), args.begin(), args.end());
    const Child c = spawn(all, {}, dir / "launch.log");
    const int status = wait_for(c, std::chrono::seconds(30));
    return std::make_pair(status, read_text(dir / "launch.log"));
  };
  auto [zero_status, zero] = run({"--nproc", "0", "--", "info", "--preset", "mlp-2d"});
  EXPECT_EQ(zero_status, 1);
  EXPECT_THAT(zero, HasSubstr("onestep: error: onestep launch: --nproc must be >= 1"));
  auto [self_status, self] = run({"--nproc", "2", "--", "launch", "--nproc", "2"});
  EXPECT_EQ(self_status, 1);
  EXPECT_THAT(self, HasSubstr("the command cannot be launch itself"));
  // A command that succeeds on every rank: launch exits 0 (info needs no rendezvous).
  auto [ok_status, ok] = run({"--nproc", "2", "--", "info", "--preset", "mlp-2d"});
  EXPECT_EQ(ok_status, 0) << ok;
}

}  // namespace
}  // namespace onestep
