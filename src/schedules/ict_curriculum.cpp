#include "core/error.h"
#include "schedules/schedules.h"

#include <algorithm>

namespace onestep {

int64_t ict_doubling_interval(int64_t total_steps, int64_t s0, int64_t s1) {
  require(s0 >= 1 && s1 >= s0, "iCT curriculum needs 1 <= s0 <= s1");
  int64_t log2_ratio = 0;  // floor(log2(floor(s1/s0))) in integers, free of float round-off
  for (int64_t r = s1 / s0; r > 1; r /= 2) ++log2_ratio;
  return std::max<int64_t>(1, total_steps / (log2_ratio + 1));
}

int64_t ict_num_levels(int64_t step, int64_t total_steps, int64_t s0, int64_t s1) {
  const int64_t doublings = step / ict_doubling_interval(total_steps, s0, s1);
  int64_t n = s0;
  for (int64_t i = 0; i < doublings && n < s1; ++i) n *= 2;
  return std::min(n, s1) + 1;
}

}  // namespace onestep
