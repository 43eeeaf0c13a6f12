// Data parallel: the rows of a global batch that each process takes, and per-sample draws sliced the same way.
#include "core/error.h"
#include "data/dataset.h"
#include "data/indexed_images.h"

#include <gtest/gtest.h>

using onestep::Batch;
using onestep::BatchLoader;
using onestep::Dataset;
using onestep::testing::indexed_images;

TEST(BatchLoader, SlicesOfTheGlobalBatchConcatenateToIt) {
  // Data parallel: rank r of 2 takes rows [2r, 2r + 2) of every global batch of 4, flips included, and the
  // stream state does not depend on the slice (any world size resumes it).
  auto data = indexed_images(10);
  BatchLoader whole(data, 4, 5, true, 2);
  BatchLoader first(data, 4, 5, true, 2, onestep::BatchSlice{0, 2});
  BatchLoader second(data, 4, 5, true, 0, onestep::BatchSlice{2, 2});
  for (int step = 0; step < 6; ++step) {  // crosses two epoch ends
    Batch w = whole.next(), a = first.next(), b = second.next();
    EXPECT_EQ(w.global_size, 0);
    EXPECT_EQ(a.global_size, 4);
    EXPECT_EQ(b.offset, 2);
    EXPECT_TRUE(torch::equal(torch::cat({a.x, b.x}), w.x)) << "step " << step;
    EXPECT_TRUE(torch::equal(torch::cat({a.labels, b.labels}), w.labels)) << "step " << step;
    EXPECT_EQ(first.state().epoch, whole.state().epoch);
    EXPECT_EQ(second.state().position, whole.state().position);
  }
  // Per-sample draws: rows of the global draw.
  Batch a = first.next();
  const torch::Tensor draws = torch::arange(4);
  EXPECT_TRUE(torch::equal(a.own_rows(draws), torch::arange(2)));
  EXPECT_EQ(a.global_shape(), (std::vector<int64_t>{4, 1, 2, 2}));
  Batch b = second.next();
  EXPECT_TRUE(torch::equal(b.own_rows(draws), torch::arange(2, 4)));
  EXPECT_THROW(BatchLoader(data, 4, 5, false, 0, onestep::BatchSlice{3, 2}), onestep::Error);
}
