#include "cli/commands.h"
#include "core/error.h"

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>

#include <iostream>

namespace onestep::cli {

void add_config_options(CLI::App& command, ConfigOptions& options, bool config_required) {
  auto* opt = command.add_option("--config,-c", options.config,
                                 "TOML configuration file, or the name of a preset in configs/");
  if (config_required) opt->required();
  command.add_option("--set,-s", options.overrides,
                     "override one key, section.key=value (repeatable), e.g. --set train.batch=64");
}

Json load_config(const ConfigOptions& options) {
  Json root = options.config.empty() ? Json::object() : load_config_file(resolve_preset(options.config));
  for (const auto& assignment : options.overrides) apply_override(root, assignment);
  return root;
}

namespace {

// c10 errors carry a multi-line backtrace; users get its first line.
std::string first_line(const std::string& text) {
  const auto nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

}  // namespace

int run_main(int argc, char** argv) {
  CLI::App app{"onestep: consistency models (iCT, ECT) and the EDM diffusion they start from, in C++"};
  app.require_subcommand(1);
  app.footer(
      "Examples:\n"
      "  onestep train --config fmnist-ict-cpu --run runs/ict\n"
      "  onestep sample --ckpt runs/ict/checkpoints/latest --steps 2 --n 64 --out grid.png\n"
      "  onestep eval --ckpt model.safetensors --steps 1,2 --n 10000 --ref ref.npz --metric fd-fmnist\n"
      "  onestep info --preset ddpmpp-cifar10\n"
      "  onestep runs runs/ict\n"
      "  onestep launch --nproc 2 -- train --config points-ict --run runs/p2\n"
      "Run 'onestep COMMAND --help' for a command's options.");
  register_train_command(app);
  register_sample_command(app);
  register_eval_command(app);
  register_info_command(app);
  register_runs_command(app);
  register_launch_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const ExitCode& e) {
    return e.code;
  } catch (const onestep::Error& e) {
    std::cerr << "onestep: error: " << e.what() << std::endl;
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "onestep: error: " << first_line(e.what_without_backtrace()) << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "onestep: error: " << first_line(e.what()) << std::endl;
    return 1;
  }
  return 0;
}

}  // namespace onestep::cli
