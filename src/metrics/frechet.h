#pragma once
// Frechet distance between two Gaussians (FID, FD-FMNIST): docs/methods.md section 10.
#include "metrics/feature_stats.h"

#include <torch/types.h>

namespace onestep {

// ||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(S1 S2), in float64. tr sqrt(S1 S2) is computed as the sum of the
// square roots of the eigenvalues of the symmetric matrix sqrt(S1) S2 sqrt(S1) (similar to S1 S2), so only symmetric
// eigendecompositions are needed; tiny negative eigenvalues from rounding are clamped to zero.
double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                        const torch::Tensor& sigma2);
double frechet_distance(const FeatureStats& a, const FeatureStats& b);

}  // namespace onestep
