#pragma once
// Sliced Wasserstein distance between two point sets (used for the 2-D evidence): project both sets on random
// unit directions, compute the exact 1-D Wasserstein-p distance of the projections by sorting, average over
// directions (p = 2: root of the mean squared distance).
#include <torch/types.h>

#include <cstdint>

namespace onestep {

// a [N, D], b [M, D] float; if N != M the larger set's sorted projections are subsampled at matching quantiles.
double sliced_wasserstein(const torch::Tensor& a, const torch::Tensor& b, int64_t num_projections, uint64_t seed,
                          int p = 1);

}  // namespace onestep
