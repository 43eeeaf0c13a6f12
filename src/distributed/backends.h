#pragma once
// Which c10d backends this build has (communicator.cpp decides from the headers found at compile time).

namespace onestep {

// ProcessGroupGloo: needs gloo's headers at build time (Debian's libgloo-dev; not in the torch wheel).
bool gloo_available();

}  // namespace onestep
