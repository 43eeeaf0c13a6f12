#include "core/error.h"
#include "data/dataset.h"
#include "data/indexed_images.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <filesystem>

using onestep::Batch;
using onestep::BatchLoader;
using onestep::Dataset;
using onestep::testing::indexed_images;
using onestep::LoaderState;

namespace {

std::vector<torch::Tensor> take(BatchLoader& loader, int count) {
  std::vector<torch::Tensor> out;
  for (int i = 0; i < count; ++i) {
    Batch b = loader.next();
    out.push_back(torch::cat({b.x.flatten(), b.labels.to(torch::kFloat32)}));
  }
  return out;
}

}  // namespace

TEST(BatchLoader, EpochIsAPermutationAndDropsTheIncompleteBatch) {
  auto data = indexed_images(10);
  BatchLoader loader(data, 3, 7, false);
  std::vector<int64_t> seen;
  for (int i = 0; i < 3; ++i) {
    Batch b = loader.next();
    ASSERT_EQ(b.x.sizes(), (std::vector<int64_t>{3, 1, 2, 2}));
    // Label and image travel together.
    for (int64_t k = 0; k < 3; ++k) {
      EXPECT_NEAR((b.x[k][0][0][0].item<float>() + 1) * 127.5f, b.labels[k].item<int64_t>() + 1, 1e-3);
      seen.push_back(b.labels[k].item<int64_t>());
    }
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
  EXPECT_EQ(loader.state().epoch, 0);
  EXPECT_EQ(loader.state().position, 9);
  loader.next();  // the 10th item is dropped: a new epoch begins
  EXPECT_EQ(loader.state().epoch, 1);
  EXPECT_EQ(loader.state().position, 3);
}

TEST(BatchLoader, DeterministicInSeedIndependentOfPrefetch) {
  auto data = indexed_images(10);
  BatchLoader a(data, 4, 11, true, 2), b(data, 4, 11, true, 0), c(data, 4, 12, true, 2);
  auto xa = take(a, 7), xb = take(b, 7), xc = take(c, 7);
  bool any_different = false;
  for (size_t i = 0; i < xa.size(); ++i) {
    EXPECT_TRUE(xa[i].equal(xb[i])) << "batch " << i;
    any_different |= !xa[i].equal(xc[i]);
  }
  EXPECT_TRUE(any_different);
}

TEST(BatchLoader, RestoreReproducesTheExactSequence) {
  auto data = indexed_images(10);
  BatchLoader loader(data, 3, 5, true, 3);
  take(loader, 4);  // crosses an epoch boundary
  const LoaderState saved = LoaderState::from_json(loader.state().to_json());
  auto expected = take(loader, 6);

  BatchLoader fresh(data, 3, 5, true, 1);
  fresh.restore(saved);
  EXPECT_EQ(fresh.state().epoch, saved.epoch);
  EXPECT_EQ(fresh.state().position, saved.position);
  auto got = take(fresh, 6);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(expected[i].equal(got[i])) << "batch " << i;

  // Restoring the same loader mid-stream (with batches already prefetched) also works.
  loader.restore(saved);
  auto again = take(loader, 6);
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_TRUE(expected[i].equal(again[i])) << "batch " << i;
}

TEST(BatchLoader, FlipMirrorsSomeImagesHorizontally) {
  auto data = indexed_images(10);
  BatchLoader loader(data, 10, 1, true, 0);
  int flipped = 0, total = 0;
  for (int e = 0; e < 5; ++e) {
    Batch b = loader.next();
    for (int64_t k = 0; k < 10; ++k, ++total) {
      const bool left = b.x[k][0][0][0].item<float>() > -1;
      const bool right = b.x[k][0][0][1].item<float>() > -1;
      EXPECT_NE(left, right);
      flipped += right;
    }
  }
  EXPECT_GT(flipped, 5);
  EXPECT_LT(flipped, total - 5);
}

TEST(BatchLoader, PointsAndBadArguments) {
  auto pts = std::make_shared<Dataset>();
  pts->samples = torch::randn({20, 2});
  BatchLoader loader(pts, 8, 0, false);
  Batch b = loader.next();
  EXPECT_EQ(b.x.sizes(), (std::vector<int64_t>{8, 2}));
  EXPECT_FALSE(b.labels.defined());
  EXPECT_THROW(BatchLoader(pts, 21, 0, false), onestep::Error);
  EXPECT_THROW(BatchLoader(pts, 0, 0, false), onestep::Error);
  EXPECT_THROW(BatchLoader(pts, 4, 0, true), onestep::Error);
  LoaderState bad;
  bad.position = 99;
  EXPECT_THROW(loader.restore(bad), onestep::Error);
  EXPECT_THROW(LoaderState::from_json(onestep::Json{{"epoch", 1}}), onestep::Error);
}

namespace {

int64_t threads_of_this_process() {
  int64_t count = 0;
  for ([[maybe_unused]] const auto& task : std::filesystem::directory_iterator("/proc/self/task")) ++count;
  return count;
}

}  // namespace

// A fork in the prefetch thread creates a second OpenMP team; libgomp then counts more threads than cores and
// throttles every team's spin-wait, which made fresh fmnist-ict-cpu runs 1.7x slower than resumed ones on 2 cores
// (bench/RESULTS.md "Resume speed"). The loader may add its own thread and nothing else.
TEST(BatchLoader, PrefetchThreadForksNoOpenMPTeam) {
  if (!std::filesystem::exists("/proc/self/task")) GTEST_SKIP() << "needs /proc/self/task (Linux)";
  const int previous_threads = torch::get_num_threads();
  torch::set_num_threads(2);
  // The main thread's own team exists before counting (a permutation of this size runs in parallel).
  (void)torch::randperm(200000, torch::kInt64).sum().item<int64_t>();
  const int64_t before = threads_of_this_process();
  {
    auto data = std::make_shared<Dataset>();
    data->samples = torch::zeros({200000, 2});
    data->name = "points";
    BatchLoader loader(std::shared_ptr<const Dataset>(data), 8, 3, false, 2);
    loader.next();
    loader.next();
    EXPECT_EQ(threads_of_this_process(), before + 1) << "the prefetch thread started an OpenMP team of its own";
  }
  torch::set_num_threads(previous_threads);
}

// CUDA training pins the batches (page-locked host memory) so that their copies can be non_blocking; the batches
// themselves are the same.
TEST(BatchLoader, PinnedBatchesAreTheSameBatchesInPageLockedMemory) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs CUDA: skipped on this machine";
  auto data = indexed_images(10);
  BatchLoader plain(data, 4, 11, true, 2), pinned(data, 4, 11, true, 2, {}, /*pin_memory=*/true);
  for (int i = 0; i < 5; ++i) {
    Batch a = plain.next(), b = pinned.next();
    EXPECT_TRUE(b.x.is_pinned());
    EXPECT_TRUE(b.labels.is_pinned());
    EXPECT_TRUE(a.x.equal(b.x)) << "batch " << i;
    EXPECT_TRUE(a.labels.equal(b.labels)) << "batch " << i;
  }
}
