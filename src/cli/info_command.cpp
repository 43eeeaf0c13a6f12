#include "cli/commands.h"
#include "core/error.h"

#include <CLI/CLI.hpp>

namespace onestep::cli {

void register_info_command(CLI::App& app) {
  auto* command = app.add_subcommand("info", "(being built)");
  command->callback([] { fail("'info' is not built yet"); });
}

}  // namespace onestep::cli
