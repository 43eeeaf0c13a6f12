// libFuzzer entry point (build with -DONESTEP_LIBFUZZER=ON and clang): the target is chosen by the environment,
//   ONESTEP_FUZZ_TARGET=npy build/fuzz/onestep_fuzz fuzz/seeds/npy -rss_limit_mb=4096
// onestep::Error is a clean rejection; any other exception escapes and libFuzzer reports it.
#include "core/error.h"
#include "fuzz/targets.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const onestep::fuzz::Target* target = [] {
    const char* name = std::getenv("ONESTEP_FUZZ_TARGET");
    const auto* found = onestep::fuzz::find_target(name ? name : "");
    if (!found) {
      std::fprintf(stderr, "set ONESTEP_FUZZ_TARGET to one of:");
      for (const auto& t : onestep::fuzz::targets()) std::fprintf(stderr, " %s", t.name.c_str());
      std::fprintf(stderr, "\n");
      std::abort();
    }
    return found;
  }();
  try {
    target->run(std::string(reinterpret_cast<const char*>(data), size));
  } catch (const onestep::Error&) {
  }
  return 0;
}
