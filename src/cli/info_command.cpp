// `onestep info`: what a preset, configuration or checkpoint builds: the architecture, its parameter count and
// its forward cost per image (counted from the layers; the utilisation figures of training use the same count).
#include "cli/commands.h"
#include "core/error.h"
#include "distributed/backends.h"
#include "networks/adm_unet.h"
#include "networks/edm2_unet.h"
#include "networks/mlp.h"
#include "networks/mp_layers.h"
#include "networks/song_unet.h"
#include "precond/model.h"

#include <CLI/CLI.hpp>
#include <torch/cuda.h>
#include <torch/version.h>

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
  bool build = false;
};

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// EDM2's code's parameter counts of its ImageNet-64 sizes (tools/make_edm2_fixtures.py --count; the U-Net without
// the uncertainty head), for a configuration with EDM2's structure; 0 otherwise.
int64_t edm2_reference_count(const Edm2UNetConfig& c) {
  const bool edm2_structure = c.img_resolution == 64 && c.img_channels == 3 && c.label_dim == 1000 &&
                              c.channel_mult == std::vector<int64_t>{1, 2, 3, 4} && c.num_blocks == 3 &&
                              c.attn_resolutions == std::vector<int64_t>{16, 8} && c.channels_per_head == 64 &&
                              c.channel_mult_noise == 1 && c.channel_mult_emb == 4;
  if (!edm2_structure)
    return 0;
  switch (c.model_channels) {
    case 128: return 124710821;
    case 192: return 280209253;
    case 256: return 497803045;
    case 320: return 777492197;
    case 384: return 1119276709;
    default: return 0;
  }
}

// The consistency-model release's own parameter counts (tools/make_adm_fixtures.py --count: cm/unet.py UNetModel
// with launch.sh's ImageNet-64 arguments, and iCT-deep's 6 res blocks); 0 for other configurations.
int64_t adm_reference_count(const AdmUNetConfig& c) {
  const bool release = c.img_resolution == 64 && c.img_channels == 3 && c.label_dim == 1000 &&
                       c.model_channels == 192 && c.channel_mult == std::vector<int64_t>{1, 2, 3, 4} &&
                       c.attn_resolutions == std::vector<int64_t>{32, 16, 8} && c.num_head_channels == 64 &&
                       c.use_scale_shift_norm;
  if (!release) return 0;
  return c.num_res_blocks == 3 ? 295899267 : c.num_res_blocks == 6 ? 495357699 : 0;
}

void print_info(const std::string& source, Denoiser& model) {
  std::ostringstream out;
  out << "source: " << source << "\n";
  NetworkImpl& network = model->network();
  if (auto* unet = dynamic_cast<SongUNetImpl*>(&network)) out << unet->config().describe();
  if (auto* mlp = dynamic_cast<MlpImpl*>(&network)) out << mlp->config().describe();
  if (auto* edm2 = dynamic_cast<Edm2UNetImpl*>(&network)) out << edm2->config().describe();
  int64_t parameters = 0;
  for (const auto& p : model->parameters()) parameters += p.numel();
  out << "parameters: " << with_commas(parameters);
  if (auto* edm2 = dynamic_cast<Edm2UNetImpl*>(&network); edm2 && edm2_reference_count(edm2->config()) > 0)
    out << " (EDM2's own count for this size: " << with_commas(edm2_reference_count(edm2->config())) << ")";
  if (auto* adm = dynamic_cast<AdmUNetImpl*>(&network); adm && adm_reference_count(adm->config()) > 0)
    out << " (the consistency-model release's own count: " << with_commas(adm_reference_count(adm->config())) << ")";
  out << "\n";
  const int64_t macs = forward_macs(model);
  char cost[160];
  std::snprintf(cost, sizeof(cost), "forward per sample: %.4g GMAC = %.4g GFLOP (%s MACs)\n",
                static_cast<double>(macs) / 1e9, 2.0 * static_cast<double>(macs) / 1e9, with_commas(macs).c_str());
  out << cost;
  const auto& p = model->precond();
  out << "precond: sigma_data " << p.sigma_data << ", sigma_min " << p.sigma_min << ", train scalings "
      << enum_name(p.train_scalings) << ", sample scalings " << enum_name(p.sample_scalings) << "\n";
  if (!model->point_scaling().is_identity()) out << "points: " << model->point_scaling().describe() << "\n";
  std::cout << out.str();
}

// What this binary was built with: LibTorch, CUDA, and the data-parallel backends (a CUDA build that did not find
// nccl.h at configure time has Gloo only: docs/distributed.md).
void print_build() {
  std::ostringstream out;
  out << "LibTorch " << TORCH_VERSION << "\n";
#ifdef ONESTEP_WITH_CUDA
  out << "CUDA: built in, " << torch::cuda::device_count() << " device(s) visible\n";
#else
  out << "CUDA: not built in (CPU only)\n";
#endif
  out << "data parallel: NCCL " << (nccl_available() ? "yes" : "no (not built in)") << ", Gloo "
      << (gloo_available() ? "yes" : "no (no gloo headers at build time)") << "\n";
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
  command->add_flag("--build", options->build, "what this binary was built with: LibTorch, CUDA, NCCL or Gloo");
  command->footer(
      "Exactly one of --preset, --config, --ckpt, --run or --build.\n"
      "Examples:\n"
      "  onestep info --preset ddpmpp-cifar10\n"
      "  onestep info --config my.toml --set model.num_blocks=2\n"
      "  onestep info --ckpt runs/ect/checkpoints/latest --weights raw\n"
      "  onestep info --run runs/ect\n"
      "  onestep info --build\n"
      "Costs are multiply-accumulates of one forward pass on one sample (convolutions, linears, attention matmuls,\n"
      "resampling filters); FLOPs = 2 x MACs.");
  command->callback([options] {
    const int given = !options->preset.empty() + !options->config.config.empty() + !options->ckpt.empty() +
                      !options->run.empty() + options->build;
    require(given == 1, "info: give exactly one of --preset, --config, --ckpt, --run or --build");
    if (options->build) return print_build();
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
    MetaInit meta;  // shapes only: EDM2-XL's 1.1e9 parameters are counted without allocating them
    Denoiser model = build_model(root);
    print_info(resolve_preset(config.config).string(), model);
  });
}

}  // namespace onestep::cli
