#include "precond/meanflow.h"

#include "core/error.h"

namespace onestep {

torch::Tensor meanflow_velocity(DenoiserImpl& model, const torch::Tensor& z, const torch::Tensor& r,
                                const torch::Tensor& t, const torch::Tensor& class_labels) {
  require(model.precond().parameterization == Parameterization::MeanFlow, "a MeanFlow objective or sampler needs a "
          "MeanFlow model (precond.parameterization = \"meanflow\", model.time_inputs = 2), got \"",
          parameterization_name(model.precond().parameterization), "\"");
  const int64_t batch = z.size(0);
  const torch::Tensor tt = t.reshape({-1}).expand({batch});
  const torch::Tensor rr = r.reshape({-1}).expand({batch});
  const torch::Tensor times = torch::stack({tt, tt - rr}, 1);  // [B, 2]: (t, t - r)
  const torch::Tensor labels = model.network_labels(class_labels, batch, z.device());
  return model.network().forward(z, times, labels).to(z.scalar_type());
}

double flow_time(double sigma) { return sigma / (1.0 + sigma); }

}  // namespace onestep
