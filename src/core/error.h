#pragma once
// One exception type for every user-facing failure (bad input, bad config, corrupt file). The CLI prints
// its message on one line and exits non-zero; nothing else in the code base prints and exits.
#include <stdexcept>
#include <string>
#include <sstream>

namespace onestep {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

namespace detail {
inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& out, const T& first, const Rest&... rest) {
  out << first;
  append_all(out, rest...);
}
}  // namespace detail

// Builds a message from pieces: fail("file ", path, ": truncated at byte ", n).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream out;
  detail::append_all(out, parts...);
  throw Error(out.str());
}

// Checks a user-facing condition (not an internal invariant: use TORCH_INTERNAL_ASSERT for those).
template <typename... Parts>
void require(bool condition, const Parts&... parts) {
  if (!condition) fail(parts...);
}

}  // namespace onestep
