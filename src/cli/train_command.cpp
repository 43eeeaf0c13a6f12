#include "cli/commands.h"
#include "core/error.h"

#include <CLI/CLI.hpp>

namespace onestep::cli {

void register_train_command(CLI::App& app) {
  auto* command = app.add_subcommand("train", "(being built)");
  command->callback([] { fail("'train' is not built yet"); });
}

}  // namespace onestep::cli
