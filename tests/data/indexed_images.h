#pragma once
// A data set whose images tell which index they are: pixel (0, 0) holds index + 1, the rest is zero (asymmetric, so
// a horizontal flip is visible), and the label is the index. Loader and batch-slice tests read positions off it.
#include "data/dataset.h"

#include <memory>

namespace onestep::testing {

inline std::shared_ptr<const Dataset> indexed_images(int64_t n) {
  auto d = std::make_shared<Dataset>();
  d->samples = torch::zeros({n, 1, 2, 2}, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) d->samples[i][0][0][0] = static_cast<uint8_t>(i + 1);
  d->labels = torch::arange(n, torch::kInt64);
  d->num_classes = n;
  d->name = "indexed";
  return d;
}

}  // namespace onestep::testing
