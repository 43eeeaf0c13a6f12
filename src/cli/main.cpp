#include "cli/commands.h"
#include "core/cpu_wait.h"

int main(int argc, char** argv) {
  onestep::remember_process_arguments(argc, argv);
  return onestep::cli::run_main(argc, argv);
}
