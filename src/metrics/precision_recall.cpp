#include "metrics/precision_recall.h"

#include "core/error.h"

#include <algorithm>

namespace onestep {

torch::Tensor kth_neighbour_radii(const torch::Tensor& points, int64_t k, int64_t block) {
  require(points.dim() == 2, "precision/recall: features must be [N, D], got ", points.sizes());
  require(k >= 1 && points.size(0) > k, "precision/recall: need more than k = ", k, " points, got ", points.size(0));
  require(block >= 1, "precision/recall: block size must be positive");
  torch::NoGradGuard no_grad;
  const auto x = points.to(torch::kFloat32);
  std::vector<torch::Tensor> radii;
  for (int64_t start = 0; start < x.size(0); start += block) {
    const auto rows = x.slice(0, start, std::min(start + block, x.size(0)));
    // The k+1-th smallest distance, since each point is its own nearest neighbour at distance 0.
    radii.push_back(std::get<0>(torch::cdist(rows, x).kthvalue(k + 1, /*dim=*/1)));
  }
  return torch::cat(radii);
}

double share_inside_manifold(const torch::Tensor& manifold, const torch::Tensor& radii, const torch::Tensor& queries,
                             int64_t block) {
  require(manifold.dim() == 2 && queries.dim() == 2 && manifold.size(1) == queries.size(1),
          "precision/recall: feature sets must be [N, D] with equal D, got ", manifold.sizes(), " and ",
          queries.sizes());
  require(radii.dim() == 1 && radii.size(0) == manifold.size(0), "precision/recall: one radius per manifold point");
  require(queries.size(0) > 0, "precision/recall: no query points");
  torch::NoGradGuard no_grad;
  const auto m = manifold.to(torch::kFloat32);
  const auto q = queries.to(m.device(), torch::kFloat32);
  const auto r = radii.to(m.device(), torch::kFloat32).unsqueeze(0);
  int64_t inside = 0;
  for (int64_t start = 0; start < q.size(0); start += block) {
    const auto rows = q.slice(0, start, std::min(start + block, q.size(0)));
    inside += (torch::cdist(rows, m) <= r).any(/*dim=*/1).sum().item<int64_t>();
  }
  return static_cast<double>(inside) / static_cast<double>(q.size(0));
}

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated, int64_t k, int64_t block) {
  PrecisionRecall result;
  result.precision = share_inside_manifold(real, kth_neighbour_radii(real, k, block), generated, block);
  result.recall = share_inside_manifold(generated, kth_neighbour_radii(generated, k, block), real, block);
  return result;
}

}  // namespace onestep
