#pragma once
// The message of the onestep::Error that `f` throws, or "(no error)": tests assert on the one-line messages
// users see.
#include "core/error.h"

#include <functional>
#include <string>

namespace onestep::testing {

inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const onestep::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace onestep::testing
