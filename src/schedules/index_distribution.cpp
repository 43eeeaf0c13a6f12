#include "core/error.h"
#include "core/random.h"
#include "schedules/schedules.h"

#include <cmath>

namespace onestep {

std::vector<double> lognormal_index_probabilities(const std::vector<double>& sigmas, double p_mean, double p_std) {
  require(sigmas.size() >= 2 && p_std > 0, "index distribution needs N >= 2 levels and P_std > 0");
  const double scale = std::sqrt(2.0) * p_std;
  std::vector<double> p(sigmas.size() - 1);
  double total = 0;
  for (size_t i = 0; i + 1 < sigmas.size(); ++i) {
    p[i] = std::erf((std::log(sigmas[i + 1]) - p_mean) / scale) - std::erf((std::log(sigmas[i]) - p_mean) / scale);
    total += p[i];
  }
  require(total > 0, "index distribution is degenerate (all probabilities 0)");
  for (double& v : p) v /= total;
  return p;
}

std::vector<double> uniform_index_probabilities(int64_t num_levels) {
  require(num_levels >= 2, "index distribution needs N >= 2 levels");
  return std::vector<double>(static_cast<size_t>(num_levels - 1), 1.0 / static_cast<double>(num_levels - 1));
}

torch::Tensor sample_indices(const std::vector<double>& probabilities, int64_t count, at::Generator& generator,
                             std::optional<torch::Device> device) {
  const torch::Tensor p = torch::tensor(probabilities, torch::kFloat64).to(device.value_or(generator_device(generator)));
  return random_categorical(p, count, generator, "index distribution");
}

}  // namespace onestep
