// `onestep info`: what a preset, configuration or checkpoint builds: the architecture, its parameter count and
// its forward cost per image (counted from the layers; the utilisation figures of training use the same count).
#include "cli/commands.h"
#include "core/error.h"
#include "networks/mlp.h"
#include "networks/song_unet.h"
#include "precond/model.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <sstream>

namespace onestep::cli {
namespace {

struct InfoOptions {
  ConfigOptions config;
  std::string preset;
  std::string ckpt;
  std::string weights;
  std::string run;
};

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string scalings_name(Scalings s) { return s == Scalings::Edm ? "edm" : "consistency"; }

void print_info(const std::string& source, Denoiser& model) {
  std::ostringstream out;
  out << "source: " << source << "\n";
  NetworkImpl& network = model->network();
  if (auto* unet = dynamic_cast<SongUNetImpl*>(&network)) out << unet->config().describe();
  if (auto* mlp = dynamic_cast<MlpImpl*>(&network)) out << mlp->config().describe();
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  out << "parameters: " << with_commas(parameters) << "\n";
  const int64_t macs = forward_macs(model);
  char cost[160];
  std::snprintf(cost, sizeof(cost), "forward per sample: %.4g GMAC = %.4g GFLOP (%s MACs)\n",
                static_cast<double>(macs) / 1e9, 2.0 * static_cast<double>(macs) / 1e9, with_commas(macs).c_str());
  out << cost;
  const auto& p = model->precond();
  out << "precond: sigma_data " << p.sigma_data << ", sigma_min " << p.sigma_min << ", train scalings "
      << scalings_name(p.train_scalings) << ", sample scalings " << scalings_name(p.sample_scalings) << "\n";
  if (!model->point_scaling().is_identity()) out << "points: " << model->point_scaling().describe() << "\n";
  std::cout << out.str();
}

}  // namespace

void register_info_command(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  auto* command = app.add_subcommand("info", "architecture, parameter count and forward cost of a model");
  command->add_option("--preset,-p", options->preset, "name of a preset in configs/ (e.g. ddpmpp-cifar10)");
  add_config_options(*command, options->config, false);
  command->add_option("--ckpt", options->ckpt, "a onestep .safetensors checkpoint (its metadata holds the model)");
  command->add_option("--weights", options->weights,
                      "weight set of a training checkpoint: raw or an EMA name (default: the first EMA)");
  command->add_option("--run", options->run, "a run directory: its summary, as 'onestep runs DIR'");
  command->footer(
      "Exactly one of --preset, --config, --ckpt or --run.\n"
      "Examples:\n"
      "  onestep info --preset ddpmpp-cifar10\n"
      "  onestep info --config my.toml --set model.num_blocks=2\n"
      "  onestep info --ckpt runs/ect/checkpoints/latest --weights raw\n"
      "  onestep info --run runs/ect\n"
      "Costs are multiply-accumulates of one forward pass on one sample (convolutions, linears, attention matmuls,\n"
      "resampling filters); FLOPs = 2 x MACs.");
  command->callback([options] {
    const int given = !options->preset.empty() + !options->config.config.empty() + !options->ckpt.empty() +
                      !options->run.empty();
    require(given == 1, "info: give exactly one of --preset, --config, --ckpt or --run");
    if (!options->run.empty()) {
      require(options->config.overrides.empty() && options->weights.empty(), "info: --run takes no --set or --weights");
      print_run_summary(options->run);
      return;
    }
    require(options->ckpt.empty() || options->config.overrides.empty(), "info: --set applies to --preset/--config");
    require(options->weights.empty() || !options->ckpt.empty(), "info: --weights needs --ckpt");
    if (!options->ckpt.empty()) {
      Denoiser model = load_model(options->ckpt, options->weights);
      print_info(options->ckpt, model);
      return;
    }
    ConfigOptions config = options->config;
    if (!options->preset.empty()) config.config = options->preset;
    const Json root = load_config(config);
    require(root.contains("model"), "info: the configuration '", config.config, "' has no [model] section");
    Denoiser model = build_model(root);
    print_info(resolve_preset(config.config).string(), model);
  });
}

}  // namespace onestep::cli
