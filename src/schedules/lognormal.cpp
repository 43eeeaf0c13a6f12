#include "core/random.h"
#include "schedules/schedules.h"

namespace onestep {

torch::Tensor sample_lognormal(int64_t count, double p_mean, double p_std, at::Generator& generator,
                               std::optional<torch::Device> device) {
  const torch::Tensor z = random_normal({count}, generator, device.value_or(generator_device(generator)),
                                        torch::kFloat32, "lognormal noise levels");
  return (z * p_std + p_mean).exp();
}

}  // namespace onestep
