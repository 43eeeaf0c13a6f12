#include "schedules/schedules.h"

#include <algorithm>
#include <cmath>

namespace onestep {

double EctMapping::r(double t, int64_t stage) const {
  // sigmoid(-b t) = 1 / (1 + e^{bt})
  const double n = kind == EctMappingKind::Const ? 1.0 : 1.0 + k / (1.0 + std::exp(b * t));
  const double exponent = static_cast<double>(paper_exponent ? stage : stage + 1);
  return std::max(0.0, t * (1.0 - n / std::pow(q, exponent)));
}

torch::Tensor EctMapping::r(const torch::Tensor& t, int64_t stage) const {
  torch::Tensor n = kind == EctMappingKind::Const ? torch::ones_like(t) : 1.0 + k * torch::sigmoid(-b * t);
  const double exponent = static_cast<double>(paper_exponent ? stage : stage + 1);
  return (t * (1.0 - n / std::pow(q, exponent))).clamp_min(0.0);
}

}  // namespace onestep
