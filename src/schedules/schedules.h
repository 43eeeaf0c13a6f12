#pragma once
// Noise-level grids, discretization curricula and noise/index distributions of iCT, original CT, ECT and EDM
// (docs/methods.md sections 2-7). Pure functions of their arguments, so each is testable against hand-computed values.
#include "config/enum_names.h"

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

// Karras levels sigma_i = (smin^(1/rho) + (i-1)/(N-1) (smax^(1/rho) - smin^(1/rho)))^rho, i = 1..N, ascending
// (sigma_1 = smin, sigma_N = smax). EDM eq. 5; docs/methods.md section 2. Requires N >= 2.
std::vector<double> karras_sigmas(int64_t n, double sigma_min, double sigma_max, double rho);

// iCT doubling curriculum (iCT section 3.4): K' = floor(K / (log2(floor(s1/s0)) + 1)),
// N(k) = min(s0 * 2^floor(k / K'), s1) + 1.
int64_t ict_doubling_interval(int64_t total_steps, int64_t s0, int64_t s1);
int64_t ict_num_levels(int64_t step, int64_t total_steps, int64_t s0, int64_t s1);

// Original CT (Song et al. 2023, appendix C): N(k) = ceil(sqrt(k/K ((s1+1)^2 - s0^2) + s0^2) - 1) + 1 and the
// teacher EMA decay mu(k) = exp(s0 ln(mu0) / N(k)).
int64_t ct_num_levels(int64_t step, int64_t total_steps, int64_t s0, int64_t s1);
double ct_teacher_decay(int64_t num_levels, int64_t s0, double mu0);

// iCT's discrete lognormal index distribution over i = 1..N-1 (returned 0-based, size N-1, normalized):
// p(i) ~ erf((ln sigma_{i+1} - Pm)/(sqrt2 Ps)) - erf((ln sigma_i - Pm)/(sqrt2 Ps)). `sigmas` ascending.
std::vector<double> lognormal_index_probabilities(const std::vector<double>& sigmas, double p_mean, double p_std);
std::vector<double> uniform_index_probabilities(int64_t num_levels);
// Draws `count` 0-based indices i (pair sigma_i, sigma_{i+1}) from `probabilities`: int64 [count] on `device`
// (default: the generator's), drawn there with `generator` (core/random.h).
torch::Tensor sample_indices(const std::vector<double>& probabilities, int64_t count, at::Generator& generator,
                             std::optional<torch::Device> device = std::nullopt);

// ln sigma ~ N(p_mean, p_std^2): EDM pretraining (-1.2, 1.2) and ECT's t (-1.1, 2.0). float32 [count] on `device`
// (default: the generator's), drawn there with `generator` (core/random.h).
torch::Tensor sample_lognormal(int64_t count, double p_mean, double p_std, at::Generator& generator,
                               std::optional<torch::Device> device = std::nullopt);

// ECT mapping (ECT section 3; docs/methods.md section 7): r(t) = max(0, t (1 - n(t) / q^e)), n(t) = 1 + k sigmoid(-b t)
// ("sigmoid") or n = 1 ("const"); e = stage + 1 (the reference code: stage 0 is skipped because tuning starts from
// a pretrained model) or e = stage (as the paper writes), chosen by `paper_exponent`.
enum class EctMappingKind { Sigmoid, Const };
template <>
struct EnumTable<EctMappingKind> {
  static constexpr EnumNames<EctMappingKind, 2> names{
      {{EctMappingKind::Sigmoid, "sigmoid"}, {EctMappingKind::Const, "const"}}};
};
struct EctMapping {
  EctMappingKind kind = EctMappingKind::Sigmoid;  // objective.mapping
  double k = 8.0, b = 1.0, q = 2.0;
  int64_t stage_length = 3200000;  // images per stage
  bool paper_exponent = false;     // true: q^stage; false: q^(stage+1)
  int64_t stage(int64_t images_seen) const { return images_seen / stage_length; }
  double r(double t, int64_t stage) const;
  torch::Tensor r(const torch::Tensor& t, int64_t stage) const;
};

}  // namespace onestep
