#include "networks/jvp.h"

#include "core/error.h"

#include <ATen/Context.h>
#include <ATen/ops/_make_dual.h>
#include <ATen/ops/_unpack_dual.h>
#include <torch/csrc/autograd/autograd.h>

namespace onestep {

JvpMethod parse_jvp_method(const std::string& value, const std::string& key) {
  if (value == "forward_ad") return JvpMethod::ForwardAd;
  if (value == "finite_difference") return JvpMethod::FiniteDifference;
  fail(key, " = \"", value, "\" is not a JVP method (forward_ad, finite_difference)");
}

const char* jvp_method_name(JvpMethod method) {
  return method == JvpMethod::ForwardAd ? "forward_ad" : "finite_difference";
}

namespace {

void jvp_check_pairs(const std::vector<torch::Tensor>& primals, const std::vector<torch::Tensor>& tangents) {
  require(!primals.empty() && primals.size() == tangents.size(), "jvp: need one tangent per primal, got ",
          tangents.size(), " tangents for ", primals.size(), " primals");
  for (size_t i = 0; i < primals.size(); ++i)
    require(primals[i].defined() && tangents[i].defined() && primals[i].sizes() == tangents[i].sizes(),
            "jvp: primal ", i, " and its tangent differ in shape");
}

// A forward-AD dual level, exited however the scope ends (the level must not outlive one JVP: tangents attached at
// a level are dropped when it exits).
class DualLevel {
 public:
  DualLevel() : level_(torch::autograd::forward_ad::enter_dual_level()) {}
  ~DualLevel() { torch::autograd::forward_ad::exit_dual_level(level_); }
  DualLevel(const DualLevel&) = delete;
  DualLevel& operator=(const DualLevel&) = delete;
  int64_t level() const { return static_cast<int64_t>(level_); }

 private:
  uint64_t level_;
};

JvpResult forward_ad_jvp(const TensorFunction& f, const std::vector<torch::Tensor>& primals,
                         const std::vector<torch::Tensor>& tangents) {
  DualLevel dual;
  std::vector<torch::Tensor> inputs;
  inputs.reserve(primals.size());
  for (size_t i = 0; i < primals.size(); ++i)
    inputs.push_back(at::_make_dual(primals[i], tangents[i].to(primals[i].dtype()), dual.level()));
  const torch::Tensor result = f(inputs);
  auto [out, tangent] = at::_unpack_dual(result, dual.level());
  // An output that does not depend on the inputs carries no tangent: its derivative is zero.
  tangent = tangent.defined() ? tangent.detach().clone() : torch::zeros_like(out).detach();
  // The primal is a view of the dual output; a copy outlives the level (and keeps the graph when grad is on).
  return {out.clone(), tangent};
}

// The default generators an evaluation on `device` draws dropout masks from.
std::vector<at::Generator> jvp_draw_generators(const torch::Device& device) {
  std::vector<at::Generator> out{at::globalContext().defaultGenerator(c10::Device(torch::kCPU))};
  if (device.type() != torch::kCPU) out.push_back(at::globalContext().defaultGenerator(device));
  return out;
}

std::vector<torch::Tensor> jvp_generator_states(std::vector<at::Generator>& generators) {
  std::vector<torch::Tensor> states;
  for (auto& g : generators) {
    std::lock_guard<std::mutex> lock(g.mutex());
    states.push_back(g.get_state());
  }
  return states;
}

void jvp_set_generator_states(std::vector<at::Generator>& generators, const std::vector<torch::Tensor>& states) {
  for (size_t i = 0; i < generators.size(); ++i) {
    std::lock_guard<std::mutex> lock(generators[i].mutex());
    generators[i].set_state(states[i]);
  }
}

JvpResult finite_difference_jvp(const TensorFunction& f, const std::vector<torch::Tensor>& primals,
                                const std::vector<torch::Tensor>& tangents, double h) {
  require(h > 0, "jvp: the finite-difference step must be > 0, got ", h);
  auto generators = jvp_draw_generators(primals[0].device());
  const auto start = jvp_generator_states(generators);
  JvpResult r;
  r.out = f(primals);
  const auto after = jvp_generator_states(generators);
  torch::NoGradGuard no_grad;
  auto shifted = [&](double sign) {
    std::vector<torch::Tensor> inputs;
    for (size_t i = 0; i < primals.size(); ++i)
      inputs.push_back(primals[i].detach() + (sign * h) * tangents[i].to(primals[i].dtype()));
    jvp_set_generator_states(generators, start);  // the same dropout mask as the evaluation at the primals
    return f(inputs);
  };
  const torch::Tensor plus = shifted(1.0), minus = shifted(-1.0);
  jvp_set_generator_states(generators, after);  // the stream continues as after one evaluation
  r.tangent = ((plus - minus) / (2 * h)).detach();
  return r;
}

}  // namespace

JvpOptions read_jvp_options(SectionReader& reader) {
  JvpOptions o;
  o.method = parse_jvp_method(reader.get_string("jvp", jvp_method_name(o.method)), "objective.jvp");
  if (o.method == JvpMethod::FiniteDifference) o.fd_step = reader.get_float("fd_step", o.fd_step);
  require(!reader.has("fd_step") || reader.was_read("fd_step"),
          "objective.fd_step is read only with objective.jvp = \"finite_difference\"; remove it");
  require(o.fd_step > 0, "objective.fd_step must be > 0, got ", o.fd_step);
  return o;
}

JvpResult jvp(const TensorFunction& f, const std::vector<torch::Tensor>& primals,
              const std::vector<torch::Tensor>& tangents, const JvpOptions& options) {
  jvp_check_pairs(primals, tangents);
  if (options.method == JvpMethod::FiniteDifference) return finite_difference_jvp(f, primals, tangents, options.fd_step);
  return forward_ad_jvp(f, primals, tangents);
}

}  // namespace onestep
