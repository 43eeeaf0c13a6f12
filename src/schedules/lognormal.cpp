#include "schedules/schedules.h"

namespace onestep {

torch::Tensor sample_lognormal(int64_t count, double p_mean, double p_std, at::Generator& generator) {
  return (at::randn({count}, generator, torch::kFloat32) * p_std + p_mean).exp();
}

}  // namespace onestep
