#pragma once
// Improved precision and recall (Kynkaanniemi et al. 2019), as StyleGAN/EDM/ECT report them: each set's manifold is
// the union of balls around its points, with radius the distance to the k-th nearest neighbour in the same set.
// precision = share of generated points inside the real manifold; recall = share of real points inside the
// generated manifold.
#include <torch/types.h>

#include <cstdint>

namespace onestep {

struct PrecisionRecall {
  double precision = 0.0;
  double recall = 0.0;
};

// real [N, D], generated [M, D]; distances are computed in row blocks of `block` points, so memory stays at
// O(block * max(N, M)) whatever the set sizes.
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& generated, int64_t k = 3,
                                 int64_t block = 1024);

// Distance of every point of `points` to its k-th nearest other point of the same set (the ball radii).
torch::Tensor kth_neighbour_radii(const torch::Tensor& points, int64_t k, int64_t block = 1024);
// Share of `queries` that lie within radii[i] of some manifold point i.
double share_inside_manifold(const torch::Tensor& manifold, const torch::Tensor& radii, const torch::Tensor& queries,
                             int64_t block = 1024);

}  // namespace onestep
