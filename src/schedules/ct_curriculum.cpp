#include "core/error.h"
#include "schedules/schedules.h"

#include <cmath>

namespace onestep {

int64_t ct_num_levels(int64_t step, int64_t total_steps, int64_t s0, int64_t s1) {
  require(total_steps > 0 && s0 >= 1 && s1 >= s0, "CT curriculum needs K > 0 and 1 <= s0 <= s1");
  const double frac = static_cast<double>(step) / static_cast<double>(total_steps);
  const double inner = frac * (static_cast<double>((s1 + 1) * (s1 + 1)) - static_cast<double>(s0 * s0)) +
                       static_cast<double>(s0 * s0);
  return static_cast<int64_t>(std::ceil(std::sqrt(inner) - 1.0)) + 1;
}

double ct_teacher_decay(int64_t num_levels, int64_t s0, double mu0) {
  return std::exp(static_cast<double>(s0) * std::log(mu0) / static_cast<double>(num_levels));
}

}  // namespace onestep
