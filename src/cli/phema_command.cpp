// `onestep phema`: EDM2's post-hoc EMA reconstruction (trainer/phema.h) from the power-function EMA snapshots a run
// wrote (train.ema_phema_std, train.phema_snapshot_every), into a model file any command loads.
#include "cli/commands.h"
#include "core/error.h"
#include "trainer/phema.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <memory>

namespace onestep::cli {
namespace {

struct PhemaOptions {
  std::string snapshots;
  double std = 0;
  int64_t step = 0;
  std::string out;
  bool list = false;
};

void run_phema(const PhemaOptions& o) {
  std::filesystem::path dir = o.snapshots;
  if (std::filesystem::is_directory(dir / "phema")) dir /= "phema";  // a run directory
  const auto snapshots = list_phema_snapshots(dir);
  if (o.list) {
    for (const auto& s : snapshots)
      std::printf("%s  step %lld  images %lld  std %.3f\n", s.path.filename().string().c_str(),
                  static_cast<long long>(s.step), static_cast<long long>(s.images_seen), s.std);
    return;
  }
  require(o.std > 0, "phema: --std is required (the relative std to reconstruct, e.g. 0.075)");
  require(!o.out.empty(), "phema: --out is required (the model file to write)");
  int64_t images = 0;
  if (o.step > 0) {
    for (const auto& s : snapshots)
      if (s.step == o.step) images = s.images_seen;
    require(images > 0, "phema: no snapshot at --step ", o.step, " in '", dir.string(), "' (see --list)");
  }
  std::vector<std::string> coefficients;
  Denoiser model = reconstruct_phema(snapshots, o.std, images, &coefficients);
  std::filesystem::create_directories(std::filesystem::absolute(o.out).parent_path());
  char std_text[32];
  std::snprintf(std_text, sizeof std_text, "%.17g", o.std);
  save_model(o.out, model, {{"phema_reconstructed_std", std_text}});
  for (const auto& line : coefficients) std::printf("  %s\n", line.c_str());
  std::printf("phema: std %.4g from %zu snapshots -> %s\n", o.std, coefficients.size(), o.out.c_str());
}

}  // namespace

void register_phema_command(CLI::App& app) {
  auto options = std::make_shared<PhemaOptions>();
  auto* command = app.add_subcommand("phema", "post-hoc EMA: reconstruct another EMA length from phema snapshots");
  command->add_option("snapshots", options->snapshots, "a run directory (its phema/) or a directory of snapshots")
      ->required();
  command->add_option("--std", options->std, "relative std of the EMA profile to reconstruct (EDM2: 0.05-0.2)");
  command->add_option("--step", options->step, "reconstruct at this snapshot's step (default: the latest)");
  command->add_option("--out,-o", options->out, "the model file to write (.safetensors)");
  command->add_flag("--list", options->list, "list the snapshots and stop");
  command->footer(
      "Training with train.ema_phema_std = [0.05, 0.10] and train.phema_snapshot_every = N writes\n"
      "<run>/phema/phema-<step>-<std>.safetensors every N steps; any std in (0, 0.2886) at any snapshot step is\n"
      "then a least-squares combination of the snapshots up to that step (EDM2 Algorithm 3).\n"
      "Example: onestep phema runs/edm2-s --std 0.075 -o runs/edm2-s/phema-0.075.safetensors");
  command->callback([options] { run_phema(*options); });
}

}  // namespace onestep::cli
