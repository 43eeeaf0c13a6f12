#pragma once
// MeanFlow (Geng et al. 2025, "Mean Flows for One-step Generative Modeling"): the flow z_t = (1 - t) x + t e,
// t in [0, 1] (t = 1 is noise), its velocity v = e - x, and the average velocity u(z_t, r, t) =
// 1/(t - r) int_r^t v(z_s, s) ds, which a network with two time inputs models directly: u = F(z_t, (t, t - r))
// (py-meanflow meanflow/models/meanflow.py:47-49 feeds (t, t - r)). One step of the flow: z_r = z_t - (t - r) u.
// docs/continuous-time.md section 2.
#include "precond/model.h"

#include <torch/types.h>

namespace onestep {

// u(z, r, t): z [B, ...], r and t [B] (or scalars); float32 [B, ...].
torch::Tensor meanflow_velocity(DenoiserImpl& model, const torch::Tensor& z, const torch::Tensor& r,
                                const torch::Tensor& t, const torch::Tensor& class_labels = {});

// The EDM noise level and the flow time at the same signal-to-noise ratio: z_t / (1 - t) = x + (t / (1 - t)) e, so
// sigma = t / (1 - t) and t = sigma / (1 + sigma). The samplers take noise levels in this one currency.
double flow_time(double sigma);

}  // namespace onestep
