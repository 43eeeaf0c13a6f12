#include "metrics/frechet.h"

#include "core/error.h"

namespace onestep {

namespace {

// Symmetric square root through eigh; eigenvalues below zero are rounding noise of a PSD matrix.
torch::Tensor psd_sqrt(const torch::Tensor& s) {
  auto [evals, evecs] = torch::linalg_eigh(s);
  return torch::mm(evecs * evals.clamp_min(0.0).sqrt().unsqueeze(0), evecs.t());
}

}  // namespace

double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& sigma1, const torch::Tensor& mu2,
                        const torch::Tensor& sigma2) {
  require(mu1.dim() == 1 && mu2.dim() == 1 && mu1.size(0) == mu2.size(0),
          "Frechet distance: means must be [D] of equal size, got ", mu1.sizes(), " and ", mu2.sizes());
  const int64_t d = mu1.size(0);
  for (const auto* s : {&sigma1, &sigma2})
    require(s->dim() == 2 && s->size(0) == d && s->size(1) == d, "Frechet distance: covariance must be [", d, ", ",
            d, "], got ", s->sizes());
  torch::NoGradGuard no_grad;
  const auto f64 = [](const torch::Tensor& t) { return t.to(torch::kCPU, torch::kFloat64); };
  const auto m1 = f64(mu1), m2 = f64(mu2);
  auto s1 = f64(sigma1), s2 = f64(sigma2);
  s1 = 0.5 * (s1 + s1.t());
  s2 = 0.5 * (s2 + s2.t());
  const auto root1 = psd_sqrt(s1);
  auto inner = torch::mm(torch::mm(root1, s2), root1);
  inner = 0.5 * (inner + inner.t());
  const double trace_sqrt = torch::linalg_eigvalsh(inner).clamp_min(0.0).sqrt().sum().item<double>();
  const double mean_term = (m1 - m2).square().sum().item<double>();
  const double fd = mean_term + s1.trace().item<double>() + s2.trace().item<double>() - 2.0 * trace_sqrt;
  require(std::isfinite(fd), "Frechet distance is not finite (NaN or Inf in the statistics)");
  return fd;
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  return frechet_distance(a.mu, a.sigma, b.mu, b.sigma);
}

}  // namespace onestep
