// The gradient averager with two real Gloo processes on a network whose graph depends on the rank (a branch that
// rank 1 alone runs, a layer no rank runs), in one bucket and in many small ones (the ordering and overlap path:
// buckets start from the autograd hooks while backward runs). Every rank must end with the same gradients: the
// mean of the ranks' local gradients, a missing one counted as zeros; a parameter no rank used keeps none.
#include "distributed/processes.h"
#include "data/temp_dir.h"
#include "distributed/backends.h"
#include "io/safetensors.h"
#include "build_paths.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

namespace onestep {
namespace {

using namespace onestep::testing;

// The two ranks' files after one averaged backward with buckets of `bucket_bytes`.
std::pair<SafetensorsContent, SafetensorsContent> average_once(const TempDir& dir, int64_t bucket_bytes) {
  const std::filesystem::path out = dir / std::to_string(bucket_bytes);
  std::filesystem::create_directories(out);
  const std::vector<int> statuses =
      run_job({ONESTEP_AVERAGER_WORKER, out.string(), std::to_string(bucket_bytes)}, 2, out);
  EXPECT_EQ(statuses, std::vector<int>({0, 0})) << logs_of(out, 2);
  return {load_safetensors(out / "rank0.safetensors"), load_safetensors(out / "rank1.safetensors")};
}

torch::Tensor local_or_zeros(const SafetensorsContent& rank, const std::string& name, const torch::Tensor& like) {
  const torch::Tensor* local = rank.find("local." + name);
  return local ? *local : torch::zeros_like(like);
}

// Checks both ranks' averaged gradients against the mean the test forms itself; returns the bucket count.
int64_t expect_consistent_means(const SafetensorsContent& r0, const SafetensorsContent& r1) {
  int checked = 0;
  for (const auto& [key, avg1] : r1.tensors) {
    if (key.rfind("avg.", 0) != 0) continue;
    const std::string name = key.substr(4);
    const torch::Tensor* avg0 = r0.find(key);
    EXPECT_NE(avg0, nullptr) << name << ": rank 1 has an averaged gradient, rank 0 none (the weights would drift)";
    if (avg0 == nullptr) continue;
    const torch::Tensor expected = (local_or_zeros(r0, name, avg1) + local_or_zeros(r1, name, avg1)) / 2;
    EXPECT_TRUE(torch::allclose(*avg0, expected, 1e-6, 1e-7)) << name;
    EXPECT_TRUE(torch::equal(*avg0, avg1)) << name << ": the ranks' gradients differ";
    ++checked;
  }
  for (const auto& [key, avg0] : r0.tensors) {
    if (key.rfind("avg.", 0) == 0) {
      EXPECT_NE(r1.find(key), nullptr) << key << " on rank 0 only";
    }
  }
  // input, 4 hidden, output and the rank-1 branch (weight and bias each); never_used on neither rank.
  EXPECT_EQ(checked, 14);
  EXPECT_EQ(r0.find("avg.never_used.weight"), nullptr);
  EXPECT_EQ(r1.find("avg.never_used.weight"), nullptr);
  // The branch really is rank 1's only (so the case under test happens), with a non-zero gradient there.
  EXPECT_EQ(r0.find("local.rank1_branch.weight"), nullptr);
  const torch::Tensor* branch = r1.find("local.rank1_branch.weight");
  EXPECT_TRUE(branch != nullptr && branch->abs().sum().item<double>() > 0);
  return r0.find("buckets")->item<int64_t>();
}

TEST(GradientAverager, BranchUsedOnOneRankGetsTheSameMeanOnEveryRank) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("averager_branch");
  const auto [r0, r1] = average_once(dir, int64_t{25} << 20);
  EXPECT_EQ(expect_consistent_means(r0, r1), 1);
}

TEST(GradientAverager, ManySmallBucketsStartInOrderAndAverageTheSame) {
  if (!gloo_available()) GTEST_SKIP() << "this build has no gloo headers (libgloo-dev)";
  TempDir dir("averager_buckets");
  // 1 byte: one bucket per parameter (16); 300 bytes: a few parameters each, the branch's beside used ones.
  const auto [r0, r1] = average_once(dir, 1);
  EXPECT_EQ(expect_consistent_means(r0, r1), 16);
  const auto [s0, s1] = average_once(dir, 300);
  const int64_t buckets = expect_consistent_means(s0, s1);
  EXPECT_GT(buckets, 2);
  EXPECT_LT(buckets, 16);
}

}  // namespace
}  // namespace onestep
