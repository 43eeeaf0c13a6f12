#include "metrics/sliced_wasserstein.h"

#include "core/error.h"

#include <ATen/CPUGeneratorImpl.h>

namespace onestep {

namespace {
// Sorted projections of `points` resampled at `n` quantile positions (i + 0.5) / n.
torch::Tensor quantiles(const torch::Tensor& sorted, int64_t n) {
  if (sorted.size(0) == n) return sorted;
  const int64_t m = sorted.size(0);
  auto pos = ((torch::arange(n, torch::kFloat64) + 0.5) * static_cast<double>(m) / static_cast<double>(n)).floor();
  return sorted.index_select(0, pos.to(torch::kLong).clamp(0, m - 1));
}
}  // namespace

double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t num_projections, uint64_t seed,
                          int p) {
  require(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(1), "sliced Wasserstein needs [N, D] and [M, D] sets");
  require(a.size(0) > 0 && b.size(0) > 0 && num_projections > 0, "sliced Wasserstein needs non-empty sets");
  require(p == 1 || p == 2, "sliced Wasserstein supports p = 1 or 2");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto dirs = at::randn({a.size(1), num_projections}, gen, torch::kFloat64);
  dirs = dirs / dirs.norm(2, 0, true);
  const auto pa = std::get<0>(a.to(torch::kCPU, torch::kFloat64).matmul(dirs).sort(0));
  const auto pb = std::get<0>(b.to(torch::kCPU, torch::kFloat64).matmul(dirs).sort(0));
  const int64_t n = std::min(pa.size(0), pb.size(0));
  const auto diff = quantiles(pa, n) - quantiles(pb, n);
  if (p == 1) return diff.abs().mean().item<double>();
  return diff.square().mean(0).sqrt().mean().item<double>();
}

}  // namespace onestep
