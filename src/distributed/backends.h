#pragma once
// Which c10d backends this build has (communicator.cpp decides from the headers found at compile time).

namespace onestep {

// ProcessGroupGloo: needs gloo's headers at build time (Debian's libgloo-dev; not in the torch wheel).
bool gloo_available();
// ProcessGroupNCCL: needs a LibTorch built with CUDA and NCCL, and nccl.h at build time.
bool nccl_available();

}  // namespace onestep
