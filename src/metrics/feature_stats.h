#pragma once
// Streaming mean and covariance of feature vectors (float64 as edm/fid.py; docs/methods.md 10), and the reference
// statistics files (.npz with "mu" [D] and "sigma" [D, D]) that numpy, pytorch-fid and EDM read and write.
#include <torch/types.h>

#include <cstdint>
#include <filesystem>

namespace onestep {

struct FeatureStats {
  torch::Tensor mu;     // float64 [D]
  torch::Tensor sigma;  // float64 [D, D], unbiased (divides by N - 1) as np.cov and EDM do
  int64_t count = 0;    // number of feature vectors behind the estimate (0 when read from a file without it)
};

// Memory is O(D^2) whatever the number of batches: it keeps the running sum and the sum of outer products in
// float64, shifted by the first batch's mean so that large offsets do not cancel catastrophically.
class FeatureStatsAccumulator {
 public:
  explicit FeatureStatsAccumulator(int64_t dim);
  void add(const torch::Tensor& features);  // [N, D], any floating dtype and device
  int64_t count() const { return count_; }
  int64_t dim() const { return dim_; }
  FeatureStats finish() const;  // needs at least 2 vectors

 private:
  int64_t dim_;
  int64_t count_ = 0;
  torch::Tensor shift_;       // float64 [D]: mean of the first batch
  torch::Tensor sum_;         // float64 [D]: sum of (x - shift)
  torch::Tensor sum_outer_;   // float64 [D, D]: sum of (x - shift)(x - shift)^T
};

FeatureStats compute_feature_stats(const torch::Tensor& features);

// Writes mu and sigma as float64 (the layout of pytorch-fid's and EDM's reference files).
void write_feature_stats(const std::filesystem::path& path, const FeatureStats& stats);
// Reads "mu" and "sigma" (float32 or float64, as written by numpy, pytorch-fid or EDM); checks their shapes.
FeatureStats read_feature_stats(const std::filesystem::path& path);

}  // namespace onestep
