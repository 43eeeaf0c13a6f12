#include "schedules/schedules.h"

#include "core/error.h"

#include <cmath>

namespace onestep {

std::vector<double> karras_sigmas(int64_t n, double sigma_min, double sigma_max, double rho) {
  require(n >= 2, "Karras levels need N >= 2, got ", n);
  require(sigma_min > 0 && sigma_max > sigma_min && rho > 0, "Karras levels need 0 < sigma_min < sigma_max and rho > 0");
  const double lo = std::pow(sigma_min, 1.0 / rho), hi = std::pow(sigma_max, 1.0 / rho);
  std::vector<double> sigmas(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    sigmas[static_cast<size_t>(i)] = std::pow(lo + static_cast<double>(i) / static_cast<double>(n - 1) * (hi - lo), rho);
  sigmas.front() = sigma_min;  // exact ends despite pow round-off
  sigmas.back() = sigma_max;
  return sigmas;
}

}  // namespace onestep
