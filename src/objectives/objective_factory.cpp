// build_objective(): the [objective] section read into one of the objectives.
#include "core/error.h"
#include "objectives/consistency_training.h"
#include "objectives/ect.h"
#include "objectives/edm.h"
#include "objectives/meanflow.h"
#include "objectives/objective.h"
#include "objectives/scm.h"

namespace onestep {

namespace {

// Each method reads only the keys its objective uses; a key it would ignore is refused with the reason, so a
// configuration never seems to set something the run did not do (method = "ct" with index = "lognormal", say).
void refuse_unread(const SectionReader& reader, const std::string& key, const std::string& why) {
  require(!reader.has(key), "objective.", key, " is not read ", why, "; remove it");
}

// Original CT fixes the choices iCT changed. Its effective configuration spells them out, so the fixed value is
// accepted; any other is refused.
template <typename E>
E fixed_ct_choice(SectionReader& reader, const std::string& key, E value) {
  const std::string want = enum_name(value);
  const std::string got = reader.get_string(key, want);
  require(got == want, "objective.", key, " = \"", got, "\" is not the original CT's (method \"ct\" always uses ",
          key, " = \"", want, "\"); to combine CT and iCT choices, use method = \"ict\" and set ", key);
  return value;
}

// The iCT / CT choices (iCT table 1): fixed to the original's for method "ct", free for "ict".
template <typename E>
E ct_choice(SectionReader& reader, ObjectiveMethod method, const std::string& key, E fallback) {
  return method == ObjectiveMethod::Ct ? fixed_ct_choice(reader, key, fallback) : reader.get_enum(key, fallback);
}

// objective.posterior_bank (objective_util.h, PosteriorBank): widens the batch posterior, so a bank with the
// single-sample target is refused; 0 (off) is accepted with either, so that a preset with a bank can be run without one
// (--set objective.target_estimate=single_sample --set objective.posterior_bank=0).
int64_t read_posterior_bank(SectionReader& reader, TargetEstimate target_estimate) {
  const int64_t bank = reader.get_int("posterior_bank", 0);
  require(bank >= 0, "objective.posterior_bank must be >= 0 (training rows kept as posterior references)");
  require(bank == 0 || target_estimate == TargetEstimate::BatchPosterior, "objective.posterior_bank = ", bank,
          " is not read with target_estimate = \"single_sample\" (it widens the batch posterior); set it to 0");
  return bank;
}

// target_estimate = "teacher" needs a diffusion teacher: only ECT (consistency tuning from one) reads it.
void require_no_teacher_estimate(TargetEstimate estimate, ObjectiveMethod method) {
  require(estimate != TargetEstimate::Teacher, "objective.target_estimate = \"teacher\" is read only by method \"ect\" (",
          enum_name(method), " has no diffusion teacher); use \"single_sample\" or \"batch_posterior\"");
}

std::unique_ptr<Objective> build_consistency_training(SectionReader& reader, ObjectiveMethod method,
                                                      const Denoiser& model) {
  auto c = ConsistencyTrainingConfig::defaults_for(method);
  c.sigma_min = reader.get_float("sigma_min", model->precond().sigma_min);
  c.sigma_max = reader.get_float("sigma_max", c.sigma_max);
  c.rho = reader.get_float("rho", c.rho);
  c.s0 = reader.get_int("s0", c.s0);
  c.s1 = reader.get_int("s1", c.s1);
  c.curriculum = ct_choice(reader, method, "curriculum", c.curriculum);
  c.index = ct_choice(reader, method, "index", c.index);
  c.metric = ct_choice(reader, method, "metric", c.metric);
  c.weighting = ct_choice(reader, method, "weighting", c.weighting);
  c.teacher = ct_choice(reader, method, "teacher", c.teacher);
  c.target_estimate = ct_choice(reader, method, "target_estimate", c.target_estimate);
  require_no_teacher_estimate(c.target_estimate, method);
  c.posterior_bank = read_posterior_bank(reader, c.target_estimate);
  const std::string by = "by method \"" + std::string(enum_name(method)) + "\"";
  if (c.index == CtIndex::LogNormal) {
    c.p_mean = reader.get_float("p_mean", c.p_mean);
    c.p_std = reader.get_float("p_std", c.p_std);
  } else {
    refuse_unread(reader, "p_mean", by + " with index = \"uniform\" (only the lognormal index uses it)");
    refuse_unread(reader, "p_std", by + " with index = \"uniform\" (only the lognormal index uses it)");
  }
  if (c.metric == CtMetric::PseudoHuber)
    c.huber_c = reader.get_float("huber_c", c.huber_c);
  else
    refuse_unread(reader, "huber_c", by + " with metric = \"l2\" (only the pseudo-Huber metric uses it)");
  if (c.teacher == CtTeacher::Ema) {
    c.mu0 = reader.get_float("mu0", c.mu0);
    c.teacher_decay = reader.get_enum("teacher_decay", c.teacher_decay);
  } else {
    refuse_unread(reader, "mu0", by + " with teacher = \"current\" (only the EMA teacher uses it)");
    refuse_unread(reader, "teacher_decay", by + " with teacher = \"current\" (only the EMA teacher uses it)");
  }
  require(c.sigma_min > 0 && c.sigma_max > c.sigma_min, "objective: need 0 < sigma_min < sigma_max");
  require(c.s0 >= 1 && c.s1 >= c.s0, "objective: need 1 <= s0 <= s1");
  require(c.p_std > 0, "objective.p_std must be > 0");
  require(c.mu0 > 0 && c.mu0 < 1, "objective.mu0 must be in (0, 1)");
  return std::make_unique<ConsistencyTrainingObjective>(c, model->sample_shape());
}

std::unique_ptr<Objective> build_edm(SectionReader& reader) {
  EdmObjectiveConfig c;
  c.p_mean = reader.get_float("p_mean", c.p_mean);
  c.p_std = reader.get_float("p_std", c.p_std);
  c.target_estimate = reader.get_enum("target_estimate", c.target_estimate);
  require_no_teacher_estimate(c.target_estimate, ObjectiveMethod::Edm);
  c.posterior_bank = read_posterior_bank(reader, c.target_estimate);
  require(c.p_std > 0, "objective.p_std must be > 0");
  return std::make_unique<EdmObjective>(c);
}

std::unique_ptr<Objective> build_ect(SectionReader& reader, const Denoiser& model) {
  EctObjectiveConfig c;
  c.p_mean = reader.get_float("p_mean", c.p_mean);
  c.p_std = reader.get_float("p_std", c.p_std);
  c.mapping.kind = reader.get_enum("mapping", c.mapping.kind);
  if (c.mapping.kind == EctMappingKind::Sigmoid) {
    c.mapping.k = reader.get_float("k", c.mapping.k);
    c.mapping.b = reader.get_float("b", c.mapping.b);
  } else {
    refuse_unread(reader, "k", "with mapping = \"const\" (n(t) = 1; only the sigmoid mapping uses k and b)");
    refuse_unread(reader, "b", "with mapping = \"const\" (n(t) = 1; only the sigmoid mapping uses k and b)");
  }
  c.mapping.q = reader.get_float("q", c.mapping.q);
  c.mapping.stage_length = reader.get_int("stage_length", c.mapping.stage_length);
  c.mapping.paper_exponent =
      reader.get_enum("stage_exponent", EctStageExponent::StagePlusOne) == EctStageExponent::Stage;
  c.huber_c = reader.get_float("huber_c", c.huber_c);
  c.weighting = reader.get_enum("weighting", c.weighting);
  c.target_estimate = reader.get_enum("target_estimate", c.target_estimate);
  c.posterior_bank = read_posterior_bank(reader, c.target_estimate);
  if (c.target_estimate == TargetEstimate::Teacher) {
    c.teacher = reader.get_string("teacher", "");
    require(!c.teacher.empty(), "objective.target_estimate = \"teacher\" needs objective.teacher (an EDM model file)");
  } else {
    refuse_unread(reader, "teacher", "by method \"ect\" unless target_estimate = \"teacher\"");
  }
  require(c.p_std > 0, "objective.p_std must be > 0");
  require(c.mapping.q > 1, "objective.q must be > 1");
  require(c.mapping.stage_length > 0, "objective.stage_length must be > 0 (images per stage)");
  require(c.huber_c >= 0, "objective.huber_c must be >= 0");
  auto objective = std::make_unique<EctObjective>(c);
  if (c.target_estimate == TargetEstimate::Teacher)
    require_same_data(objective->teacher(), model, "objective.teacher '" + c.teacher + "'");
  return objective;
}

std::unique_ptr<Objective> build_method(SectionReader& reader, ObjectiveMethod method, const Denoiser& model) {
  switch (method) {
    case ObjectiveMethod::MeanFlow: return build_meanflow_objective(reader, model);  // objectives/meanflow.h
    case ObjectiveMethod::Sct:
    case ObjectiveMethod::Scd: return build_scm_objective(reader, method, model);  // objectives/scm.h
    case ObjectiveMethod::Edm: return build_edm(reader);
    case ObjectiveMethod::Ect: return build_ect(reader, model);
    case ObjectiveMethod::Ct:
    case ObjectiveMethod::Ict: return build_consistency_training(reader, method, model);
  }
  fail("objective.method: unhandled method ", enum_name(method));
}

}  // namespace

std::unique_ptr<Objective> build_objective(const Json& root, const Denoiser& model) {
  SectionReader reader(root, "objective");
  const ObjectiveMethod method = reader.get_enum("method", ObjectiveMethod::Ict);
  std::unique_ptr<Objective> objective = build_method(reader, method, model);
  // A key of another method: say whose it is (finish() would call it unknown).
  const std::vector<std::pair<std::string, std::string>> owners = {
      {"sigma_min", "ct, ict"}, {"sigma_max", "ct, ict"},     {"rho", "ct, ict"},        {"curriculum", "ct, ict"},
      {"s0", "ct, ict"},        {"s1", "ct, ict"},            {"index", "ct, ict"},      {"metric", "ct, ict"},
      {"weighting", "ct, ict, ect"}, {"teacher", "ct, ict, scd, ect"}, {"mu0", "ct, ict"}, {"teacher_decay", "ct, ict"},
      {"huber_c", "ict, ect"},  {"p_mean", "edm, ict, ect"},  {"p_std", "edm, ict, ect"}, {"mapping", "ect"},
      {"k", "ect"},             {"b", "ect"},                 {"q", "ect"},              {"stage_length", "ect"},
      {"stage_exponent", "ect"}, {"posterior_bank", "edm, ict, ect"}};
  for (const auto& [key, methods] : owners)
    require(!reader.has(key) || reader.was_read(key), "objective.", key, " is not read by method \"",
            enum_name(method), "\" (a key of ", methods, "); remove it");
  reader.finish();
  return objective;
}

}  // namespace onestep
