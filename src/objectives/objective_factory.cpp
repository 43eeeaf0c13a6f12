#include "core/error.h"
#include "objectives/methods.h"

namespace onestep {

std::unique_ptr<Objective> build_objective(const Json& root, const Denoiser& model) {
  SectionReader reader(root, "objective");
  const std::string method = reader.get_string("method", "ict", {"edm", "ct", "ict", "ect"});
  std::unique_ptr<Objective> objective;
  if (method == "edm") {
    EdmObjectiveConfig c;
    c.p_mean = reader.get_float("p_mean", c.p_mean);
    c.p_std = reader.get_float("p_std", c.p_std);
    require(c.p_std > 0, "objective.p_std must be > 0");
    objective = std::make_unique<EdmObjective>(c);
  } else if (method == "ect") {
    EctObjectiveConfig c;
    c.p_mean = reader.get_float("p_mean", c.p_mean);
    c.p_std = reader.get_float("p_std", c.p_std);
    c.mapping.kind = reader.get_string("mapping", c.mapping.kind, {"sigmoid", "const"});
    c.mapping.k = reader.get_float("k", c.mapping.k);
    c.mapping.b = reader.get_float("b", c.mapping.b);
    c.mapping.q = reader.get_float("q", c.mapping.q);
    c.mapping.stage_length = reader.get_int("stage_length", c.mapping.stage_length);
    c.mapping.paper_exponent =
        reader.get_string("stage_exponent", "stage_plus_one", {"stage_plus_one", "stage"}) == "stage";
    c.huber_c = reader.get_float("huber_c", c.huber_c);
    require(c.p_std > 0, "objective.p_std must be > 0");
    require(c.mapping.q > 1, "objective.q must be > 1");
    require(c.mapping.stage_length > 0, "objective.stage_length must be > 0 (images per stage)");
    require(c.huber_c >= 0, "objective.huber_c must be >= 0");
    objective = std::make_unique<EctObjective>(c);
  } else {
    auto c = ConsistencyTrainingConfig::defaults_for(method);
    c.sigma_min = reader.get_float("sigma_min", model->precond().sigma_min);
    c.sigma_max = reader.get_float("sigma_max", c.sigma_max);
    c.rho = reader.get_float("rho", c.rho);
    c.curriculum = reader.get_string("curriculum", c.curriculum, {"doubling", "sqrt"});
    c.s0 = reader.get_int("s0", c.s0);
    c.s1 = reader.get_int("s1", c.s1);
    c.index = reader.get_string("index", c.index, {"lognormal", "uniform"});
    c.p_mean = reader.get_float("p_mean", c.p_mean);
    c.p_std = reader.get_float("p_std", c.p_std);
    c.metric = reader.get_string("metric", c.metric, {"pseudo_huber", "l2"});
    c.huber_c = reader.get_float("huber_c", c.huber_c);
    c.weighting = reader.get_string("weighting", c.weighting, {"inverse_dt", "uniform"});
    c.teacher = reader.get_string("teacher", c.teacher, {"current", "ema"});
    c.mu0 = reader.get_float("mu0", c.mu0);
    require(c.sigma_min > 0 && c.sigma_max > c.sigma_min, "objective: need 0 < sigma_min < sigma_max");
    require(c.s0 >= 1 && c.s1 >= c.s0, "objective: need 1 <= s0 <= s1");
    require(c.p_std > 0, "objective.p_std must be > 0");
    require(c.mu0 > 0 && c.mu0 < 1, "objective.mu0 must be in (0, 1)");
    objective = std::make_unique<ConsistencyTrainingObjective>(c, model->sample_shape());
  }
  reader.finish();
  return objective;
}

}  // namespace onestep
