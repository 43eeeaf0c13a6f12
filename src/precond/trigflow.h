#pragma once
// TrigFlow (Lu & Song 2024, "Simplifying, Stabilizing and Scaling Continuous-Time Consistency Models", section 3):
// x_t = cos(t) x_0 + sin(t) z, z ~ N(0, sigma_data^2 I), t in [0, pi/2]; the consistency function
// f(x_t, t) = cos(t) x_t - sin(t) sigma_data F(x_t / sigma_data, c_noise(t)) with c_noise(t) = t (section 3, and
// section 4.1's identity time transformation), and the conversions between an EDM model and TrigFlow.
// docs/continuous-time.md section 3.
#include "precond/model.h"

#include <torch/types.h>

namespace onestep {

// x_t = cos(t) x0 + sin(t) z and its time derivative dx_t/dt = cos(t) z - sin(t) x0 (sCT's tangent, from data);
// t is [B], broadcast over the sample dimensions.
torch::Tensor trigflow_noisy(const torch::Tensor& x0, const torch::Tensor& z, const torch::Tensor& t);
torch::Tensor trigflow_velocity(const torch::Tensor& x0, const torch::Tensor& z, const torch::Tensor& t);

// F_theta(x_t / sigma_data, t) of a TrigFlow model: the network output, float32 [B, ...]; for TrigFlowEdm the
// same F from the model's EDM denoiser (model.h).
torch::Tensor trigflow_network(DenoiserImpl& model, const torch::Tensor& x_t, const torch::Tensor& t,
                               const torch::Tensor& class_labels = {});
// f(x_t, t) = cos(t) x_t - sin(t) sigma_data F (sCM section 3): f(x, 0) = x exactly.
torch::Tensor trigflow_consistency(DenoiserImpl& model, const torch::Tensor& x_t, const torch::Tensor& t,
                                   const torch::Tensor& class_labels = {});

// An EDM diffusion model as a TrigFlow teacher (sCD): with sigma = sigma_data tan(t) and x_edm = x_t / cos(t)
// (the same signal-to-noise ratio), the probability-flow ODE in TrigFlow time is
// dx_t/dt = (cos(t) x_t - D(x_t / cos(t), sigma_data tan(t))) / sin(t) (sCM section 3, the EDM-to-TrigFlow map;
// FastGen's TrigFlowPrecond does the same through x0_to_flow). Returns dx_t/dt, float32, no grad.
torch::Tensor edm_teacher_velocity(Denoiser& teacher, const torch::Tensor& x_t, const torch::Tensor& t,
                                   const torch::Tensor& class_labels = {});

// EDM noise level <-> TrigFlow time at the same signal-to-noise ratio: t = arctan(sigma / sigma_data).
double trigflow_time(double sigma, double sigma_data);

}  // namespace onestep
