#pragma once
// Jacobian-vector products of a network (or of any function of tensors built from one): the time derivative
// d/dt f(x_t, t) that continuous-time consistency models (sCM, Lu & Song 2024) and MeanFlow (Geng et al. 2025) need.
// Forward-mode AD by default (one pass that carries primal and tangent together); a central finite difference as a
// fallback for networks with an op that has no forward derivative (FastGen's finite-difference option).
// docs/continuous-time.md section 1.
#include "config/config.h"

#include <torch/types.h>

#include <functional>
#include <vector>

namespace onestep {

enum class JvpMethod {
  ForwardAd,         // torch forward-mode AD (dual tensors): exact up to rounding
  FiniteDifference,  // (f(p + h v) - f(p - h v)) / 2h: O(h^2) truncation, O(eps / h) rounding
};
// "forward_ad" | "finite_difference"; anything else throws naming `key`.
JvpMethod parse_jvp_method(const std::string& value, const std::string& key);
const char* jvp_method_name(JvpMethod method);

struct JvpOptions {
  JvpMethod method = JvpMethod::ForwardAd;
  // The finite-difference step h along the tangents (the objectives' tangents are O(1) per element). In float32
  // the error is about h^2 |f'''| / 6 + eps32 |f| / h: 1e-3 balances the two (tests/networks/jvp_test.cpp).
  double fd_step = 1e-3;
};

struct JvpResult {
  torch::Tensor out;      // f(primals); keeps its autograd graph when grad mode is on (the objectives backprop it)
  torch::Tensor tangent;  // J_f(primals) . tangents, detached
};

using TensorFunction = std::function<torch::Tensor(const std::vector<torch::Tensor>&)>;

// jvp(f, p, v) = (f(p), sum_i df/dp_i v_i). Every primal needs a tangent of its shape (zeros for an input the
// derivative does not move). Dropout (or any other draw from the default generator) sees the same random numbers
// in every evaluation: forward AD evaluates once; the finite difference rewinds the generator before each pass.
JvpResult jvp(const TensorFunction& f, const std::vector<torch::Tensor>& primals,
              const std::vector<torch::Tensor>& tangents, const JvpOptions& options = {});

// objective.jvp ("forward_ad" | "finite_difference") and, with the finite difference only, objective.fd_step.
JvpOptions read_jvp_options(SectionReader& reader);

}  // namespace onestep
