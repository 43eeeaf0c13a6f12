#include "trainer/ema.h"

#include "core/error.h"
#include "trainer/phema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace onestep {

namespace {
std::string short_number(double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.10g", value);
  return buffer;
}
}  // namespace

std::string EmaRule::name() const {
  if (power_std > 0) return "phema" + short_number(power_std);
  return half_life ? "hl" + short_number(half_life_mimg) : short_number(beta);
}

double EmaRule::beta_for(int64_t batch, int64_t images_seen) const {
  if (power_std > 0)  // EDM2 updates with t_next = the images seen after this step (training_loop.py)
    return phema_beta(power_std, static_cast<double>(images_seen + batch), static_cast<double>(batch));
  if (!half_life) return beta;
  double h = half_life_mimg * 1e6;
  if (ramp > 0) h = std::min(h, ramp * static_cast<double>(images_seen));
  // EDM's guard: at the very first step h = 0 and the average becomes a copy of the weights.
  return std::pow(0.5, static_cast<double>(batch) / std::max(h, 1e-8));
}

Denoiser clone_model(Denoiser& model) {
  Denoiser copy = build_model(Json{{"model", model->model_config()}, {"precond", model->precond().to_json()}});
  copy->set_trained_with(model->trained_with());
  copy->set_point_scaling(model->point_scaling());
  torch::NoGradGuard no_grad;
  auto source_params = model->named_parameters();
  auto target_params = copy->named_parameters();
  for (auto& item : target_params) item.value().copy_(source_params[item.key()]);
  auto source_buffers = model->named_buffers();
  for (auto& item : copy->named_buffers()) item.value().copy_(source_buffers[item.key()]);
  // Same device and dtype as the source.
  if (!model->parameters().empty()) copy->to(model->parameters().front().device());
  return copy;
}

Ema::Ema(EmaRule rule, Denoiser& model) : rule_(rule), model_(clone_model(model)) {
  if (rule_.power_std > 0)
    phema_std_to_exp(rule_.power_std);  // validates the std
  else if (!rule_.half_life)
    require(rule_.beta >= 0 && rule_.beta < 1, "train.ema: beta must lie in [0, 1), got ", rule_.beta);
  else
    require(rule_.half_life_mimg > 0, "train.ema_halflife_mimg must be > 0, got ", rule_.half_life_mimg);
  model_->eval();
  for (auto& p : model_->parameters()) p.set_requires_grad(false);
}

void Ema::update(Denoiser& model, int64_t batch, int64_t images_seen) {
  update_with_beta(model, rule_.beta_for(batch, images_seen));
}

void Ema::update_with_beta(Denoiser& model, double beta) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> averages, weights;
  for (auto& p : model_->parameters()) averages.push_back(p);
  for (auto& p : model->parameters()) weights.push_back(p.detach());
  TORCH_INTERNAL_ASSERT(averages.size() == weights.size());
  // lerp(ema, w, 1 - beta) = ema + (1 - beta)(w - ema)
  at::_foreach_lerp_(averages, weights, 1.0 - beta);
  auto source_buffers = model->buffers();
  auto target_buffers = model_->buffers();
  for (size_t i = 0; i < target_buffers.size(); ++i) target_buffers[i].copy_(source_buffers[i]);
}

}  // namespace onestep
