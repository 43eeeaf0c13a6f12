#include "metrics/feature_stats.h"

#include "core/error.h"
#include "io/npy.h"

#include <algorithm>

namespace onestep {

FeatureStatsAccumulator::FeatureStatsAccumulator(int64_t dim) : dim_(dim) {
  require(dim > 0, "feature statistics: dimension must be positive, got ", dim);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  sum_ = torch::zeros({dim}, opts);
  sum_outer_ = torch::zeros({dim, dim}, opts);
}

void FeatureStatsAccumulator::add(const torch::Tensor& features) {
  require(features.dim() == 2 && features.size(1) == dim_, "feature statistics: expected features [N, ", dim_,
          "], got ", features.sizes());
  if (features.size(0) == 0) return;
  torch::NoGradGuard no_grad;
  auto x = features.to(torch::kFloat64);
  require(torch::isfinite(x).all().item<bool>(), "feature statistics: features contain NaN or Inf");
  if (!shift_.defined()) shift_ = x.mean(0);
  x = x - shift_.to(x.device());
  // The outer-product sum is the only O(N D^2) step: on a GPU it runs there, then lands in the CPU accumulators.
  sum_ += x.sum(0).cpu();
  sum_outer_ += torch::mm(x.t(), x).cpu();
  count_ += features.size(0);
}

FeatureStats FeatureStatsAccumulator::finish() const {
  require(count_ >= 2, "feature statistics need at least 2 feature vectors, got ", count_);
  const double n = static_cast<double>(count_);
  const auto mean_shifted = sum_ / n;
  FeatureStats stats;
  stats.mu = (mean_shifted + shift_.cpu()).contiguous();
  auto sigma = (sum_outer_ - n * torch::outer(mean_shifted, mean_shifted)) / (n - 1.0);
  stats.sigma = (0.5 * (sigma + sigma.t())).contiguous();  // exact symmetry for the eigensolver
  stats.count = count_;
  return stats;
}

FeatureStats compute_feature_stats(const torch::Tensor& features) {
  require(features.dim() == 2, "feature statistics: expected features [N, D], got ", features.sizes());
  FeatureStatsAccumulator acc(features.size(1));
  acc.add(features);
  return acc.finish();
}

void write_feature_stats(const std::filesystem::path& path, const FeatureStats& stats) {
  require(stats.mu.defined() && stats.sigma.defined(), "cannot write empty feature statistics to ", path.string());
  write_npz(path, {{"mu", stats.mu.to(torch::kFloat64).contiguous()},
                   {"sigma", stats.sigma.to(torch::kFloat64).contiguous()}});
}

FeatureStats read_feature_stats(const std::filesystem::path& path) {
  require(std::filesystem::exists(path), "reference statistics file not found: ", path.string());
  const auto arrays = read_npz(path);
  const auto mu_it = arrays.find("mu");
  const auto sigma_it = arrays.find("sigma");
  require(mu_it != arrays.end() && sigma_it != arrays.end(), "reference statistics ", path.string(),
          ": expected arrays 'mu' and 'sigma'");
  const auto& mu = mu_it->second;
  const auto& sigma = sigma_it->second;
  require(mu.dim() == 1 && mu.size(0) > 0, "reference statistics ", path.string(), ": 'mu' must be [D], got ",
          mu.sizes());
  require(sigma.dim() == 2 && sigma.size(0) == mu.size(0) && sigma.size(1) == mu.size(0), "reference statistics ",
          path.string(), ": 'sigma' must be [", mu.size(0), ", ", mu.size(0), "], got ", sigma.sizes());
  require(mu.is_floating_point() && sigma.is_floating_point(), "reference statistics ", path.string(),
          ": 'mu' and 'sigma' must be floating point");
  FeatureStats stats;
  stats.mu = mu.to(torch::kFloat64).contiguous();
  stats.sigma = sigma.to(torch::kFloat64).contiguous();
  require(torch::isfinite(stats.mu).all().item<bool>() && torch::isfinite(stats.sigma).all().item<bool>(),
          "reference statistics ", path.string(), ": contain NaN or Inf");
  // A covariance is symmetric positive semi-definite; pytorch-fid's sqrtm fails on anything else, and the Frechet
  // distance of such a "covariance" is meaningless. Tolerances allow the rounding of float32 files and of
  // singular covariances (fewer samples than dimensions).
  const double scale = stats.sigma.abs().max().item<double>();
  const double asymmetry = (stats.sigma - stats.sigma.t()).abs().max().item<double>();
  require(asymmetry <= 1e-5 * scale, "reference statistics ", path.string(),
          ": 'sigma' is not symmetric (max |S - S^T| = ", asymmetry, ", max |S| = ", scale, ")");
  const torch::Tensor eigenvalues = torch::linalg_eigvalsh(stats.sigma);
  const double smallest = eigenvalues.min().item<double>(), largest = eigenvalues.max().item<double>();
  require(smallest >= -1e-4 * std::max(largest, 0.0), "reference statistics ", path.string(),
          ": 'sigma' is not positive semi-definite (smallest eigenvalue ", smallest, ", largest ", largest, ")");
  return stats;
}

}  // namespace onestep
