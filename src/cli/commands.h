#pragma once
namespace onestep::cli {
int run_main(int argc, char** argv);
}
