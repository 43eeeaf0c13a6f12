#include "cli/commands.h"
#include "core/error.h"

#include <CLI/CLI.hpp>

namespace onestep::cli {

void register_sample_command(CLI::App& app) {
  auto* command = app.add_subcommand("sample", "(being built)");
  command->callback([] { fail("'sample' is not built yet"); });
}

}  // namespace onestep::cli
