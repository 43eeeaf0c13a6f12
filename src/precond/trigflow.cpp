#include "precond/trigflow.h"

#include "core/error.h"

#include <cmath>

namespace onestep {

namespace {
// [B] -> [B, 1, ...] to broadcast over a sample of `like`'s rank.
torch::Tensor trig_broadcast(const torch::Tensor& t, const torch::Tensor& like) {
  std::vector<int64_t> shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = like.size(0);
  return t.reshape(shape);
}
}  // namespace

torch::Tensor trigflow_noisy(const torch::Tensor& x0, const torch::Tensor& z, const torch::Tensor& t) {
  const torch::Tensor s = trig_broadcast(t, x0);
  return s.cos() * x0 + s.sin() * z;
}

torch::Tensor trigflow_velocity(const torch::Tensor& x0, const torch::Tensor& z, const torch::Tensor& t) {
  const torch::Tensor s = trig_broadcast(t, x0);
  return s.cos() * z - s.sin() * x0;
}

torch::Tensor trigflow_network(DenoiserImpl& model, const torch::Tensor& x_t, const torch::Tensor& t,
                               const torch::Tensor& class_labels) {
  const Parameterization p = model.precond().parameterization;
  require(is_trigflow(p), "a TrigFlow objective or sampler needs a TrigFlow model (precond.parameterization = "
          "\"trigflow\" or \"trigflow_edm\"), got \"", parameterization_name(p), "\"");
  const int64_t batch = x_t.size(0);
  const double sd = model.precond().sigma_data;
  const torch::Tensor tt = t.reshape({-1}).expand({batch});
  if (p == Parameterization::TrigFlowEdm) {
    // FastGen's TrigFlowPrecond (sCM.py:35-72): the EDM denoiser at the same SNR, turned into a TrigFlow velocity.
    const torch::Tensor s = trig_broadcast(tt, x_t);
    const torch::Tensor denoised = model.denoise(x_t / s.cos(), sd * tt.tan(), Scalings::Edm, class_labels);
    return ((s.cos() * x_t - denoised.to(x_t.scalar_type())) / (sd * s.sin()));
  }
  const torch::Tensor labels = model.network_labels(class_labels, batch, x_t.device());
  return model.network().forward(x_t / sd, tt, labels).to(x_t.scalar_type());
}

torch::Tensor trigflow_consistency(DenoiserImpl& model, const torch::Tensor& x_t, const torch::Tensor& t,
                                   const torch::Tensor& class_labels) {
  const torch::Tensor s = trig_broadcast(t.reshape({-1}).expand({x_t.size(0)}), x_t);
  const double sd = model.precond().sigma_data;
  return s.cos() * x_t - s.sin() * sd * trigflow_network(model, x_t, t, class_labels);
}

torch::Tensor edm_teacher_velocity(Denoiser& teacher, const torch::Tensor& x_t, const torch::Tensor& t,
                                   const torch::Tensor& class_labels) {
  torch::NoGradGuard no_grad;
  const double sd = teacher->precond().sigma_data;
  // In float64: cos(t) -> 0 near pi/2 and sin(t) -> 0 near 0 divide.
  const torch::Tensor x = x_t.to(torch::kFloat64);
  const torch::Tensor s = trig_broadcast(t.to(torch::kFloat64), x);
  const torch::Tensor sigma = (sd * t.to(torch::kFloat64).tan()).to(torch::kFloat32);
  const torch::Tensor denoised =
      teacher->forward((x / s.cos()).to(torch::kFloat32), sigma, Scalings::Edm, class_labels).to(torch::kFloat64);
  return ((s.cos() * x - denoised) / s.sin()).to(torch::kFloat32);
}

double trigflow_time(double sigma, double sigma_data) { return std::atan(sigma / sigma_data); }

}  // namespace onestep
