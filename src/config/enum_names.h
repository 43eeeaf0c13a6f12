#pragma once
// The spelling of an option's choices in configuration files, run summaries and checkpoint metadata, for the enum
// the code switches on. A component declares its table once, next to its enum:
//
//   enum class Metric { PseudoHuber, L2 };
//   template <>
//   struct EnumTable<Metric> {
//     static constexpr EnumNames<Metric, 2> names{{{Metric::PseudoHuber, "pseudo_huber"}, {Metric::L2, "l2"}}};
//   };
//
// SectionReader::get_enum parses it where the config is read (the same one-line errors as get_string with its
// choices, listed in the table's order), and enum_name writes it back, so configs and checkpoints keep their strings.
#include "core/error.h"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace onestep {

template <typename E, size_t N>
using EnumNames = std::array<std::pair<E, const char*>, N>;

// Specialized once per enum (see above); the primary template is never defined.
template <typename E>
struct EnumTable;

// The configuration spelling of `value`.
template <typename E>
const char* enum_name(E value) {
  for (const auto& [v, name] : EnumTable<E>::names)
    if (v == value) return name;
  fail("enum_name: a value without a name in its table");
}

// The value spelled `name`, or nullopt.
template <typename E>
std::optional<E> enum_from_name(std::string_view name) {
  for (const auto& [v, spelled] : EnumTable<E>::names)
    if (name == spelled) return v;
  return std::nullopt;
}

// Every spelling, in the table's order (the order error messages list them).
template <typename E>
std::vector<std::string> enum_names() {
  std::vector<std::string> out;
  for (const auto& entry : EnumTable<E>::names) out.emplace_back(entry.second);
  return out;
}

// `name` parsed, or an onestep::Error "<what> must be one of a, b (got 'x')".
template <typename E>
E parse_enum(const std::string& name, const std::string& what) {
  if (auto v = enum_from_name<E>(name)) return *v;
  std::string list;
  for (const auto& spelled : enum_names<E>()) list += (list.empty() ? "" : ", ") + spelled;
  fail(what, " must be one of ", list, " (got '", name, "')");
}

}  // namespace onestep
