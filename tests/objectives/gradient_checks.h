#pragma once
// The check every whole-training-step test makes after backward(): each parameter of the model got a gradient, finite
// and not all zero (a parameter the loss does not reach, or a NaN in the step, fails it by name).
#include "precond/model.h"

#include <gtest/gtest.h>

namespace onestep::testing {

inline void expect_every_parameter_has_a_finite_nonzero_gradient(Denoiser& model) {
  for (const auto& p : model->named_parameters()) {
    SCOPED_TRACE(p.key());
    EXPECT_TRUE(p.value().grad().defined());
    if (!p.value().grad().defined()) continue;
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>());
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0);
  }
}

}  // namespace onestep::testing
