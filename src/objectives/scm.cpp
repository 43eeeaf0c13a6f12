#include "objectives/scm.h"

#include "core/error.h"
#include "core/random.h"
#include "objectives/objective_util.h"
#include "precond/trigflow.h"

#include <algorithm>
#include <cmath>

namespace onestep {

ScmObjective::ScmObjective(ScmConfig config) : config_(std::move(config)) {
  if (!config_.distillation) return;
  teacher_ = load_frozen_teacher(config_.teacher, "objective.teacher");
}

ScmLoss scm_loss(DenoiserImpl& model, const torch::Tensor& x0, const torch::Tensor& z, const torch::Tensor& t,
                 const torch::Tensor& dxdt, double warmup, const torch::Tensor& labels, const ScmConfig& config) {
  const double sd = model.precond().sigma_data;
  std::vector<int64_t> shape(static_cast<size_t>(x0.dim()), 1);
  shape[0] = x0.size(0);
  const torch::Tensor cos_t = t.cos().reshape(shape), sin_t = t.sin().reshape(shape);
  const torch::Tensor x_t = trigflow_noisy(x0, z, t);

  SharedDropoutState dropout(x0.device());  // the JVP pass sees the student's dropout mask
  const torch::Tensor F = trigflow_network(model, x_t, t, labels);
  dropout.rewind();
  torch::Tensor F_jvp;
  {
    torch::NoGradGuard no_grad;
    // cos(t) sin(t) dF^-/dt, the JVP along (cos t sin t dx_t/dt, cos t sin t) in (x_t, t): the factor keeps the
    // tangent bounded at both ends of [0, pi/2] (sCM algorithm 1; FastGen sCM.py:177-179).
    const TensorFunction f = [&](const std::vector<torch::Tensor>& p) {
      return trigflow_network(model, p[0], p[1], labels);
    };
    F_jvp = jvp(f, {x_t.detach(), t}, {cos_t * sin_t * dxdt, t.cos() * t.sin()}, config.jvp).tangent;
  }
  dropout.restore();

  // g = -cos^2(t) (sd F^- - dx_t/dt) - r cos(t) sin(t) (x_t + sd dF^-/dt), r the warm-up ratio (sCM algorithm 1,
  // section 4.2; sCM.py:262-269).
  const torch::Tensor F_sg = F.detach();
  torch::Tensor g = -cos_t.square() * (sd * F_sg - dxdt) - warmup * (cos_t * sin_t * x_t + sd * F_jvp);
  torch::Tensor norm = squared_l2_per_sample(g).sqrt();
  if (config.tangent_norm == TangentNorm::Rms) norm = norm / std::sqrt(static_cast<double>(g[0].numel()));
  g = g / (norm.reshape(shape) + config.tangent_c);  // tangent normalisation (sCM section 4.2; sCM.py:272-275)

  // e^{-w(t)} / d ||F - F^- - g||^2 + w(t): the mean over the d elements, weighted by the learned log-variance
  // (sCM section 4.2; sCM.py:280-285).
  const torch::Tensor squared_error = (F - F_sg - g).square().reshape({x0.size(0), -1}).mean(1);
  const torch::Tensor logvar = model.logvar_head()->forward(t);
  torch::Tensor weighted = (-logvar).exp() * squared_error;
  if (config.prior_weighting) weighted = weighted / (sd * t.tan());
  return {(weighted + logvar).mean(), squared_error.detach(), logvar.detach(), g};
}

LossOutput ScmObjective::compute_loss(Denoiser& model, const Batch& batch, const TrainProgress& progress,
                                      at::Generator& generator) {
  const torch::Tensor& x0 = batch.x;
  const double sd = model->precond().sigma_data;
  // Per-sample draws for the whole global batch, this process's rows kept (data-parallel runs, dataset.h).
  const torch::Tensor tau = batch.own_rows(
      random_normal({batch.global_batch()}, generator, x0.device(), torch::kFloat32, "sCM proposal"));
  const torch::Tensor t = ((tau * config_.p_std + config_.p_mean).exp() / sd).atan();
  const torch::Tensor z =
      batch.own_rows(random_normal(batch.global_shape(), generator, x0.device(), torch::kFloat32, "sCM noise")) * sd;
  const torch::Tensor labels = one_hot_labels(model, batch);
  torch::Tensor dxdt;
  if (config_.distillation) {
    teacher_->to(x0.device());
    dxdt = edm_teacher_velocity(teacher_, trigflow_noisy(x0, z, t), t, labels);
  } else {
    dxdt = trigflow_velocity(x0, z, t);
  }
  const double warmup = config_.tangent_warmup <= 0 ? 1.0
                        : std::min(1.0, static_cast<double>(progress.step) / static_cast<double>(config_.tangent_warmup));
  const ScmLoss out = scm_loss(*model, x0, z, t, dxdt, warmup, labels, config_);
  return {out.loss, Json{{"mean_squared_error", stat_value(out.squared_error.mean())},
                         {"mean_logvar", stat_value(out.logvar.mean())},
                         {"tangent_warmup", warmup},
                         {"mean_t", stat_value(t.mean())}}};
}

Json ScmObjective::to_json() const {
  const auto& c = config_;
  Json j{{"method", name()},           {"p_mean", c.p_mean},       {"p_std", c.p_std},
         {"tangent_warmup", c.tangent_warmup}, {"tangent_c", c.tangent_c},
         {"tangent_norm", enum_name(c.tangent_norm)},
         {"prior_weighting", c.prior_weighting}, {"jvp", jvp_method_name(c.jvp.method)}};
  if (c.jvp.method == JvpMethod::FiniteDifference) j["fd_step"] = c.jvp.fd_step;
  if (c.distillation) j["teacher"] = c.teacher;
  return j;
}

std::unique_ptr<Objective> build_scm_objective(SectionReader& reader, ObjectiveMethod method,
                                               const Denoiser& model) {
  require(is_trigflow(model->precond().parameterization), "objective.method = \"", enum_name(method),
          "\" needs a TrigFlow model: set precond.parameterization = \"trigflow\" (or \"trigflow_edm\")");
  ScmConfig c;
  c.distillation = method == ObjectiveMethod::Scd;
  c.p_mean = reader.get_float("p_mean", c.p_mean);
  c.p_std = reader.get_float("p_std", c.p_std);
  c.tangent_warmup = reader.get_int("tangent_warmup", c.tangent_warmup);
  c.tangent_c = reader.get_float("tangent_c", c.tangent_c);
  c.tangent_norm = reader.get_enum("tangent_norm", TangentNorm::Rms);
  c.prior_weighting = reader.get_bool("prior_weighting", c.prior_weighting);
  c.jvp = read_jvp_options(reader);
  if (c.distillation) {
    c.teacher = reader.get_string("teacher", "");
    require(!c.teacher.empty(), "objective.method = \"scd\" needs objective.teacher (an EDM model file)");
  } else {
    require(!reader.has("teacher"), "objective.teacher is read only by method \"scd\" (sCT learns from data); remove it");
  }
  require(c.p_std > 0, "objective.p_std must be > 0");
  require(c.tangent_warmup >= 0, "objective.tangent_warmup must be >= 0 (steps), got ", c.tangent_warmup);
  require(c.tangent_c > 0, "objective.tangent_c must be > 0, got ", c.tangent_c);
  auto objective = std::make_unique<ScmObjective>(c);
  if (c.distillation) {
    // The teacher must describe the same data as the student.
    require_same_data(objective->teacher(), model, "objective.teacher '" + c.teacher + "'");
  }
  return objective;
}

}  // namespace onestep
