#include "cli/commands.h"
#include "core/error.h"
#include <CLI/CLI.hpp>
#include <iostream>
namespace onestep::cli {
int run_main(int argc, char** argv) {
  CLI::App app{"onestep: consistency models (iCT, ECT) in C++"};
  CLI11_PARSE(app, argc, argv);
  return 0;
}
}
