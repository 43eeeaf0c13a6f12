#include "cli/commands.h"
#include "core/error.h"

#include <CLI/CLI.hpp>

namespace onestep::cli {

void register_eval_command(CLI::App& app) {
  auto* command = app.add_subcommand("eval", "(being built)");
  command->callback([] { fail("'eval' is not built yet"); });
}

}  // namespace onestep::cli
