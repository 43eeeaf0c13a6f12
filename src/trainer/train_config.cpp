#include "trainer/train_config.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace onestep {

std::vector<EmaRule> TrainConfig::ema_rules() const {
  std::vector<EmaRule> rules;
  for (double beta : ema) {
    EmaRule rule;
    rule.beta = beta;
    rules.push_back(rule);
  }
  for (double h : ema_halflife_mimg) {
    EmaRule rule;
    rule.half_life = true;
    rule.half_life_mimg = h;
    rule.ramp = ema_rampup;
    rules.push_back(rule);
  }
  for (double std : ema_phema_std) {
    EmaRule rule;
    rule.power_std = std;
    rules.push_back(rule);
  }
  return rules;
}

double TrainConfig::lr_factor(int64_t step, int64_t images_seen) const {
  double factor = 1.0;
  // EDM ramps with the images seen before the step (its very first step has lr 0).
  if (warmup_mimg > 0) factor = std::min(factor, static_cast<double>(images_seen) / (warmup_mimg * 1e6));
  if (warmup_steps > 0) factor = std::min(factor, static_cast<double>(step + 1) / static_cast<double>(warmup_steps));
  if (lr_decay == LrDecay::InverseSqrt) {
    // EDM2's learning_rate_schedule (training_loop.py; ECT's ImageNet loop the same): alpha_ref / sqrt(max(t / t_ref,
    // 1)) with t the images seen before the step and t_ref = lr_decay_batches batches (EDM2 paper Eq. 15).
    const double t_ref = static_cast<double>(lr_decay_batches) * static_cast<double>(batch);
    factor /= std::sqrt(std::max(static_cast<double>(images_seen) / t_ref, 1.0));
  } else if (lr_decay != LrDecay::None) {
    // Progress p through the decay window [start, steps): 0 at its first step, 1 at train.steps (never reached,
    // so the last step still moves the weights).
    const double start = std::floor(lr_decay_start * static_cast<double>(steps));
    const double p = std::clamp((static_cast<double>(step) - start) / (static_cast<double>(steps) - start), 0.0, 1.0);
    factor *= lr_decay == LrDecay::Cosine ? 0.5 * (1.0 + std::cos(std::numbers::pi * p)) : 1.0 - p;
  }
  return factor;
}

TrainConfig TrainConfig::from_config(const Json& root) {
  TrainConfig c;
  SectionReader r(root, "train");
  c.steps = r.get_int("steps", c.steps);
  c.batch = r.get_int("batch", c.batch);
  c.batch_per_gpu = r.get_int("batch_per_gpu", c.batch_per_gpu);
  c.lr = r.get_float("lr", c.lr);
  c.optimizer = r.get_enum("optimizer", c.optimizer);
  const auto betas = r.get_floats("betas", {c.hyper.beta1, c.hyper.beta2});
  require(betas.size() == 2, "train.betas: expected two values [beta1, beta2], got ", betas.size());
  c.hyper.beta1 = betas[0];
  c.hyper.beta2 = betas[1];
  c.hyper.eps = r.get_float("eps", c.hyper.eps);
  c.hyper.weight_decay = r.get_float("weight_decay", c.hyper.weight_decay);
  c.warmup_mimg = r.get_float("warmup_mimg", c.warmup_mimg);
  c.warmup_steps = r.get_int("warmup_steps", c.warmup_steps);
  c.lr_decay = r.get_enum("lr_decay", c.lr_decay);
  c.lr_decay_batches = r.get_int("lr_decay_batches", c.lr_decay_batches);
  c.lr_decay_start = r.get_float("lr_decay_start", c.lr_decay_start);
  c.grad_clip = r.get_float("grad_clip", c.grad_clip);
  c.grad_nan_to_num = r.get_bool("grad_nan_to_num", c.grad_nan_to_num);
  c.ema = r.get_floats("ema", c.ema);
  c.ema_halflife_mimg = r.get_floats("ema_halflife_mimg", c.ema_halflife_mimg);
  c.ema_rampup = r.get_float("ema_rampup", c.ema_rampup);
  c.ema_phema_std = r.get_floats("ema_phema_std", c.ema_phema_std);
  c.phema_snapshot_every = r.get_int("phema_snapshot_every", c.phema_snapshot_every);
  c.bf16 = r.get_bool("bf16", c.bf16);
  c.tf32 = r.get_bool("tf32", c.tf32);
  c.deterministic = r.get_bool("deterministic", c.deterministic);
  c.cudnn_benchmark = r.get_bool("cudnn_benchmark", c.cudnn_benchmark);
  c.channels_last = r.get_bool("channels_last", c.channels_last);
  c.checkpoint_every = r.get_int("checkpoint_every", c.checkpoint_every);
  c.keep_checkpoints = r.get_int("keep_checkpoints", c.keep_checkpoints);
  c.sample_every = r.get_int("sample_every", c.sample_every);
  c.sample_count = r.get_int("sample_count", c.sample_count);
  c.log_every = r.get_int("log_every", c.log_every);
  c.max_nonfinite = r.get_int("max_nonfinite", c.max_nonfinite);
  c.seed = r.get_int("seed", c.seed);
  c.device = parse_device_choice(r.get_string("device", device_choice_name(c.device), {"auto", "cpu", "cuda"}),
                                 "train.device");
  c.threads = r.get_int("threads", c.threads);
  c.cpu_wait = r.get_string("cpu_wait", c.cpu_wait, {"auto", "spin", "sleep"});
  r.finish();

  require(c.steps > 0, "train.steps must be > 0, got ", c.steps);
  require(c.batch > 0, "train.batch must be > 0, got ", c.batch);
  require(c.batch_per_gpu >= 0, "train.batch_per_gpu must be > 0 (or 0 = no gradient accumulation), got ",
          c.batch_per_gpu);
  require(c.lr > 0, "train.lr must be > 0, got ", c.lr);
  require(c.warmup_mimg >= 0 && c.warmup_steps >= 0, "train.warmup_mimg / warmup_steps must be >= 0");
  require(c.lr_decay != LrDecay::InverseSqrt || c.lr_decay_batches > 0,
          "train.lr_decay = \"inverse_sqrt\" needs train.lr_decay_batches > 0 (EDM2's t_ref in batches)");
  require(c.lr_decay_start >= 0 && c.lr_decay_start < 1, "train.lr_decay_start must be in [0, 1), got ",
          c.lr_decay_start);
  require(c.grad_clip >= 0, "train.grad_clip must be >= 0 (0 = off), got ", c.grad_clip);
  for (double b : c.ema) require(b >= 0 && b < 1, "train.ema: each beta must lie in [0, 1), got ", b);
  for (double h : c.ema_halflife_mimg) require(h > 0, "train.ema_halflife_mimg: each must be > 0, got ", h);
  require(c.ema_rampup >= 0, "train.ema_rampup must be >= 0, got ", c.ema_rampup);
  for (double std : c.ema_phema_std)  // EDM2 Eq. 126 has a positive exponent only below exp_to_std(0) = 0.2887
    require(std > 0 && std < 0.2886, "train.ema_phema_std: each must lie in (0, 0.2886), got ", std);
  require(c.phema_snapshot_every >= 0, "train.phema_snapshot_every must be >= 0, got ", c.phema_snapshot_every);
  require(c.phema_snapshot_every == 0 || !c.ema_phema_std.empty(),
          "train.phema_snapshot_every is set but train.ema_phema_std lists no power-function EMA");
  require(c.checkpoint_every >= 0, "train.checkpoint_every must be >= 0, got ", c.checkpoint_every);
  require(c.keep_checkpoints >= 1, "train.keep_checkpoints must be >= 1, got ", c.keep_checkpoints);
  require(c.sample_count > 0, "train.sample_count must be > 0, got ", c.sample_count);
  require(c.log_every > 0, "train.log_every must be > 0, got ", c.log_every);
  require(c.max_nonfinite >= 1, "train.max_nonfinite must be >= 1, got ", c.max_nonfinite);
  require(!(c.deterministic && c.cudnn_benchmark),
          "train.cudnn_benchmark = true contradicts train.deterministic = true (autotuning picks algorithms by time)");
  require(c.threads >= 0, "train.threads must be >= 0, got ", c.threads);
  // Validates betas / eps.
  (void)make_optimizer(c.optimizer, {}, c.hyper);
  return c;
}

ProcessSettings TrainConfig::process_settings(int local_rank) const {
  ProcessSettings s;
  s.device = device;
  s.local_rank = local_rank;
  s.tf32 = tf32;
  s.cudnn_benchmark = cudnn_benchmark;
  s.deterministic = deterministic;
  s.threads = threads;
  s.cpu_wait = cpu_wait;
  s.seed = static_cast<uint64_t>(seed);
  return s;
}

Json TrainConfig::to_json() const {
  return Json{{"steps", steps},
              {"batch", batch},
              {"batch_per_gpu", batch_per_gpu},
              {"lr", lr},
              {"optimizer", enum_name(optimizer)},
              {"betas", {hyper.beta1, hyper.beta2}},
              {"eps", hyper.eps},
              {"weight_decay", hyper.weight_decay},
              {"warmup_mimg", warmup_mimg},
              {"warmup_steps", warmup_steps},
              {"lr_decay", enum_name(lr_decay)},
              {"lr_decay_start", lr_decay_start},
              {"lr_decay_batches", lr_decay_batches},
              {"grad_clip", grad_clip},
              {"grad_nan_to_num", grad_nan_to_num},
              {"ema", ema},
              {"ema_halflife_mimg", ema_halflife_mimg},
              {"ema_rampup", ema_rampup},
              {"ema_phema_std", ema_phema_std},
              {"phema_snapshot_every", phema_snapshot_every},
              {"bf16", bf16},
              {"tf32", tf32},
              {"deterministic", deterministic},
              {"cudnn_benchmark", cudnn_benchmark},
              {"channels_last", channels_last},
              {"checkpoint_every", checkpoint_every},
              {"keep_checkpoints", keep_checkpoints},
              {"sample_every", sample_every},
              {"sample_count", sample_count},
              {"log_every", log_every},
              {"max_nonfinite", max_nonfinite},
              {"seed", seed},
              {"device", device_choice_name(device)},
              {"threads", threads},
              {"cpu_wait", cpu_wait}};
}

}  // namespace onestep
