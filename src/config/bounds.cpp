#include "config/bounds.h"

#include "core/error.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>

namespace onestep {
namespace {

constexpr double kNone = -std::numeric_limits<double>::infinity();
constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr double kSteps = 1e12;           // training steps and intervals: ~30 years at 1000 steps/s
constexpr double kBatch = 1 << 24;        // samples in one batch
constexpr double kWidth = 1 << 16;        // features of a layer

std::string number(double v) {
  std::ostringstream out;
  if (std::isinf(v)) out << (v > 0 ? "inf" : "-inf");
  else if (std::floor(v) == v && std::abs(v) < 1e18) out << static_cast<int64_t>(v);
  else out << v;
  return out.str();
}

}  // namespace

const std::vector<ConfigBound>& config_bounds() {
  static const std::vector<ConfigBound> table = {
      // [train]
      {"train.threads", 0, 1024, "CPU threads (0 = LibTorch's default); more than any machine's cores"},
      {"train.steps", kNone, kSteps, "training steps"},
      {"train.batch", kNone, kBatch, "samples per step"},
      {"train.batch_per_gpu", kNone, kBatch, "samples per micro-batch"},
      {"train.warmup_steps", kNone, kSteps, "steps"},
      {"train.checkpoint_every", kNone, kSteps, "steps"},
      {"train.keep_checkpoints", kNone, 1e6, "checkpoint files"},
      {"train.sample_every", -1, kSteps, "steps (0 = at the end only, -1 = never)"},
      {"train.sample_count", kNone, 1e5, "samples per grid"},
      {"train.log_every", kNone, kSteps, "steps"},
      {"train.max_nonfinite", kNone, 1e9, "steps"},
      {"train.seed", 0, kInfinity, "a seed"},
      // [model]: the MLP
      {"model.in_dim", kNone, kWidth, "coordinates"},
      {"model.hidden", kNone, kWidth, "features per hidden layer"},
      {"model.num_layers", kNone, 1000, "hidden layers"},
      {"model.noise_channels", kNone, kWidth, "noise-embedding features"},
      {"model.label_dim", kNone, 1e5, "classes"},
      // [model]: the U-Net
      {"model.img_resolution", kNone, 4096, "pixels per side"},
      {"model.img_channels", kNone, 1024, "image channels"},
      {"model.augment_dim", kNone, 1024, "augmentation labels"},
      {"model.model_channels", kNone, 8192, "channels"},
      {"model.channel_mult", kNone, 64, "a channel multiplier"},
      {"model.channel_mult_emb", kNone, 64, "a channel multiplier"},
      {"model.channel_mult_noise", kNone, 64, "a channel multiplier"},
      {"model.num_blocks", kNone, 64, "blocks per resolution"},
      {"model.attn_resolutions", kNone, 4096, "pixels per side"},
      // [data]
      {"data.resolution", kNone, 4096, "pixels per side"},
      {"data.subset", kNone, 1e12, "samples"},
      {"data.num_points", kNone, 1e8, "points"},
      // [sample]
      {"sample.steps", kNone, 1e4, "noise levels"},
      // [eval]
      {"eval.n", kNone, 1e8, "samples"},
      {"eval.batch", kNone, kBatch, "samples per network call"},
      {"eval.every", kNone, kSteps, "steps"},
      {"eval.steps", kNone, 1e4, "sampler steps"},
      {"eval.seed", 0, kInfinity, "a seed"},
      // [objective]
      {"objective.s0", kNone, 1e6, "discretization steps"},
      {"objective.s1", kNone, 1e6, "discretization steps"},
      {"objective.stage_length", kNone, 1e15, "images per stage"},
      {"objective.huber_c", 0, kInfinity, "the pseudo-Huber constant c (0 = the plain distance)"},
  };
  return table;
}

const ConfigBound* find_config_bound(const std::string& key) {
  for (const ConfigBound& row : config_bounds())
    if (key == row.key) return &row;
  return nullptr;
}

namespace {
void check(const std::string& key, double value, const std::string& shown) {
  const ConfigBound* row = find_config_bound(key);
  if (row == nullptr || (value >= row->min && value <= row->max)) return;
  const std::string range = row->min == kNone ? "at most " + number(row->max)
                            : row->max == kInfinity ? "at least " + number(row->min)
                                                    : "in [" + number(row->min) + ", " + number(row->max) + "]";
  fail("config: ", key, " = ", shown, " is out of range: it must be ", range, " (", row->what, ")");
}
}  // namespace

void check_config_bound(const std::string& key, double value) { check(key, value, number(value)); }
void check_config_bound(const std::string& key, int64_t value) {
  check(key, static_cast<double>(value), std::to_string(value));
}

}  // namespace onestep
