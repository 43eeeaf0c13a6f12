#pragma once
// Configuration: TOML presets (configs/*.toml) read into a JSON tree, `--set section.key=value` overrides, and
// SectionReader, through which each component parses its own section into a typed struct. Every reader
// rejects unknown keys (naming the valid ones), ill-typed values and values outside their choices, so a typo
// never silently falls back to a default.
#include "config/enum_names.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <set>
#include <string>
#include <vector>

namespace onestep {

using Json = nlohmann::json;

// Reads a TOML file into a JSON object (tables -> objects). Errors name the file and the line.
Json load_toml_file(const std::filesystem::path& path);
Json parse_toml(const std::string& text, const std::string& source_name);

// Reads a configuration file whose root may name presets to start from: `base = "unet-fmnist-cpu"` or
// `base = ["a", "b"]`. Bases are merged in order, then the file itself on top (tables merge key by key,
// everything else is replaced); the `base` key does not survive into the result.
Json load_config_file(const std::filesystem::path& path);
// Deep merge: keys of `top` replace or extend those of `bottom`.
void merge_into(Json& bottom, const Json& top);

// Resolves `--config` values: an existing path, or the name of a preset in configs/ ("fmnist-ict-cpu").
std::filesystem::path resolve_preset(const std::string& name_or_path);
std::filesystem::path presets_dir();
std::vector<std::string> list_presets();

// Applies "section.key=value": value is parsed as a TOML value (1e-4, true, "str", [2,2,2]); a bare word
// that is not a TOML literal is taken as a string, so --set data.dataset=cifar10 works without quotes.
void apply_override(Json& root, const std::string& assignment);

// Serializes the JSON tree back to TOML (the effective configuration written into a run directory).
std::string to_toml(const Json& root);

// Reads one section ("model", "train", ...) of the configuration with typed, defaulted accessors.
class SectionReader {
 public:
  SectionReader(const Json& root, std::string section);

  bool get_bool(const std::string& key, bool fallback);
  int64_t get_int(const std::string& key, int64_t fallback);
  double get_float(const std::string& key, double fallback);
  std::string get_string(const std::string& key, const std::string& fallback,
                         std::initializer_list<const char*> choices = {});
  // A choice parsed into its enum (config/enum_names.h): the errors of get_string with the table's spellings.
  template <typename E>
  E get_enum(const std::string& key, E fallback) {
    return *enum_from_name<E>(get_choice(key, enum_name(fallback), enum_names<E>()));
  }
  std::vector<int64_t> get_ints(const std::string& key, const std::vector<int64_t>& fallback);
  std::vector<double> get_floats(const std::string& key, const std::vector<double>& fallback);
  std::vector<std::string> get_strings(const std::string& key, const std::vector<std::string>& fallback);
  bool has(const std::string& key) const;
  bool was_read(const std::string& key) const { return known_.count(key) > 0; }  // asked for by a get_*

  // Throws if the section holds a key that was never asked for, listing the valid keys.
  void finish() const;

 private:
  const Json* find(const std::string& key);
  std::string get_choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& choices);
  std::string name(const std::string& key) const { return section_ + "." + key; }
  Json section_json_;
  std::string section_;
  std::set<std::string> known_;
};

// Throws if the root holds a section not in `sections`.
void check_sections(const Json& root, std::initializer_list<const char*> sections);

}  // namespace onestep
