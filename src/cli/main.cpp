#include "cli/commands.h"
int main(int argc, char** argv) { return onestep::cli::run_main(argc, argv); }
