#include "objectives/meanflow.h"

#include "core/error.h"
#include "core/random.h"
#include "objectives/objective_util.h"
#include "precond/meanflow.h"

namespace onestep {

std::pair<torch::Tensor, torch::Tensor> MeanFlowObjective::draw_times(int64_t count, at::Generator& generator,
                                                                      const torch::Device& device) const {
  const auto& c = config_;
  auto logit_normal = [&](double mean, double std) {
    return torch::sigmoid(random_normal({count}, generator, device, torch::kFloat32, "MeanFlow times") * std + mean);
  };
  torch::Tensor t = logit_normal(c.p_mean_t, c.p_std_t);
  torch::Tensor r = logit_normal(c.p_mean_r, c.p_std_r);
  const torch::Tensor tie = random_uniform({count}, generator, device, torch::kFloat32, "MeanFlow r = t") < 1 - c.ratio;
  if (c.time_pairs == MeanFlowTimePairs::SortThenTie) {  // time_sampler.py:22-39
    const torch::Tensor hi = torch::maximum(t, r), lo = torch::minimum(t, r);
    return {hi, torch::where(tie, hi, lo)};
  }
  r = torch::where(tie, t, r);  // time_sampler.py:42-60
  return {t, torch::minimum(t, r)};
}

MeanFlowLoss meanflow_loss(DenoiserImpl& model, const torch::Tensor& x, const torch::Tensor& e, const torch::Tensor& t,
                           const torch::Tensor& r, const torch::Tensor& labels, const MeanFlowConfig& config) {
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  const torch::Tensor tb = t.reshape(shape), rb = r.reshape(shape);
  const torch::Tensor z = (1 - tb) * x + tb * e;  // the flow path (paper section 3; meanflow.py:43-44)
  const torch::Tensor v = e - x;                  // its conditional velocity dz/dt
  // du/dt = v . d_z u + 0 . d_r u + 1 . d_t u: the tangent (v, 0, 1) in (z, r, t), here ordered (z, t, r) as
  // meanflow.py:51-55 passes (z, t, r) with (v, 1, 0).
  const TensorFunction u = [&](const std::vector<torch::Tensor>& p) {
    return meanflow_velocity(model, p[0], p[2], p[1], labels);
  };
  const JvpResult j = jvp(u, {z, t, r}, {v, torch::ones_like(t), torch::zeros_like(r)}, config.jvp);
  const torch::Tensor target = (v - (tb - rb) * j.tangent).detach();  // the MeanFlow identity, paper section 4.1, under sg
  const torch::Tensor squared_error = squared_l2_per_sample(j.out - target);
  // w = 1 / (||delta||^2 + c)^p, a stop-gradient weight (paper section 4.3; meanflow.py:63-64).
  const torch::Tensor weight = (squared_error.detach() + config.norm_eps).pow(-config.norm_p);
  return {(weight * squared_error).mean(), squared_error};
}

LossOutput MeanFlowObjective::compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& /*progress*/,
                                           at::Generator& generator) {
  const torch::Tensor& x = batch.x;
  // Per-sample draws for the whole global batch, this process's rows kept (data-parallel runs, dataset.h).
  auto [t_all, r_all] = draw_times(batch.global_batch(), generator, x.device());
  const torch::Tensor t = batch.own_rows(t_all), r = batch.own_rows(r_all);
  const torch::Tensor e =
      batch.own_rows(random_normal(batch.global_shape(), generator, x.device(), torch::kFloat32, "MeanFlow noise"));
  const MeanFlowLoss out = meanflow_loss(*model, x, e, t, r, one_hot_labels(model, batch), config_);
  return {out.loss, Json{{"mean_squared_error", stat_value(out.squared_error.mean())},
                         {"frac_r_eq_t", stat_value((r == t).to(torch::kFloat32).mean())},
                         {"mean_t", stat_value(t.mean())}}};
}

Json MeanFlowObjective::to_json() const {
  const auto& c = config_;
  Json j{{"method", "meanflow"}, {"p_mean_t", c.p_mean_t}, {"p_std_t", c.p_std_t},  {"p_mean_r", c.p_mean_r},
         {"p_std_r", c.p_std_r}, {"ratio", c.ratio},        {"norm_p", c.norm_p},    {"norm_eps", c.norm_eps},
         {"time_pairs", enum_name(c.time_pairs)},
         {"jvp", jvp_method_name(c.jvp.method)}};
  if (c.jvp.method == JvpMethod::FiniteDifference) j["fd_step"] = c.jvp.fd_step;
  return j;
}

std::unique_ptr<Objective> build_meanflow_objective(SectionReader& reader, const Denoiser& model) {
  require(model->precond().parameterization == Parameterization::MeanFlow,
          "objective.method = \"meanflow\" needs a MeanFlow model: set precond.parameterization = \"meanflow\" and "
          "model.time_inputs = 2");
  MeanFlowConfig c;
  c.p_mean_t = reader.get_float("p_mean_t", c.p_mean_t);
  c.p_std_t = reader.get_float("p_std_t", c.p_std_t);
  c.p_mean_r = reader.get_float("p_mean_r", c.p_mean_r);
  c.p_std_r = reader.get_float("p_std_r", c.p_std_r);
  c.ratio = reader.get_float("ratio", c.ratio);
  c.time_pairs = reader.get_enum("time_pairs", c.time_pairs);
  c.norm_p = reader.get_float("norm_p", c.norm_p);
  c.norm_eps = reader.get_float("norm_eps", c.norm_eps);
  c.jvp = read_jvp_options(reader);
  require(c.p_std_t > 0 && c.p_std_r > 0, "objective.p_std_t and objective.p_std_r must be > 0");
  require(c.ratio >= 0 && c.ratio <= 1, "objective.ratio must be in [0, 1], got ", c.ratio);
  require(c.norm_p >= 0, "objective.norm_p must be >= 0, got ", c.norm_p);
  require(c.norm_eps > 0, "objective.norm_eps must be > 0, got ", c.norm_eps);
  return std::make_unique<MeanFlowObjective>(c);
}

}  // namespace onestep
