#include "config/config.h"

#include "config/bounds.h"
#include "core/error.h"
#include "build_paths.h"

#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace onestep {
namespace {

Json node_to_json(const toml::node& node) {
  if (auto* table = node.as_table()) {
    Json out = Json::object();
    for (auto&& [key, value] : *table) out[std::string(key.str())] = node_to_json(value);
    return out;
  }
  if (auto* array = node.as_array()) {
    Json out = Json::array();
    for (auto&& value : *array) out.push_back(node_to_json(value));
    return out;
  }
  if (auto* v = node.as_integer()) return Json(v->get());
  if (auto* v = node.as_floating_point()) return Json(v->get());
  if (auto* v = node.as_boolean()) return Json(v->get());
  if (auto* v = node.as_string()) return Json(v->get());
  fail("config: unsupported TOML value (dates and times are not configuration values)");
}

void json_to_table(const Json& json, toml::table& table);

void insert_value(const Json& value, const std::string& key, toml::table& table);

toml::array json_to_array(const Json& json) {
  toml::array array;
  for (const auto& item : json) {
    if (item.is_boolean()) array.push_back(item.get<bool>());
    else if (item.is_number_integer()) array.push_back(item.get<int64_t>());
    else if (item.is_number()) array.push_back(item.get<double>());
    else if (item.is_string()) array.push_back(item.get<std::string>());
    else if (item.is_array()) array.push_back(json_to_array(item));
    else if (item.is_object()) {
      toml::table t;
      json_to_table(item, t);
      array.push_back(std::move(t));
    }
  }
  return array;
}

void insert_value(const Json& value, const std::string& key, toml::table& table) {
  if (value.is_object()) {
    toml::table sub;
    json_to_table(value, sub);
    table.insert(key, std::move(sub));
  } else if (value.is_array()) {
    table.insert(key, json_to_array(value));
  } else if (value.is_boolean()) {
    table.insert(key, value.get<bool>());
  } else if (value.is_number_integer()) {
    table.insert(key, value.get<int64_t>());
  } else if (value.is_number()) {
    table.insert(key, value.get<double>());
  } else if (value.is_string()) {
    table.insert(key, value.get<std::string>());
  }
}

void json_to_table(const Json& json, toml::table& table) {
  for (auto it = json.begin(); it != json.end(); ++it) insert_value(it.value(), it.key(), table);
}

// A value as the user wrote it: JSON would print NaN and inf as "null".
std::string shown(const Json& v) {
  if (v.is_array()) {
    std::string out = "[";
    for (const auto& item : v) out += (out.size() > 1 ? ", " : "") + shown(item);
    return out + "]";
  }
  if (v.is_number_float() && !std::isfinite(v.get<double>())) {
    const double x = v.get<double>();
    return std::isnan(x) ? "nan" : x > 0 ? "inf" : "-inf";
  }
  return v.dump();
}

std::string type_name(const Json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "a table";
  return "null";
}

}  // namespace

Json parse_toml(const std::string& text, const std::string& source_name) {
  try {
    toml::table table = toml::parse(text, source_name);
    return node_to_json(table);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    fail("config ", source_name, ":", where.line, ":", where.column, ": ", e.description());
  }
}

Json load_toml_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  require(in.good(), "config: cannot read '", path.string(), "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_toml(buffer.str(), path.string());
}

void merge_into(Json& bottom, const Json& top) {
  for (auto it = top.begin(); it != top.end(); ++it) {
    if (it.value().is_object() && bottom.contains(it.key()) && bottom[it.key()].is_object())
      merge_into(bottom[it.key()], it.value());
    else
      bottom[it.key()] = it.value();
  }
}

namespace {
Json load_with_bases(const std::filesystem::path& path, int depth) {
  require(depth < 16, "config: 'base' chain too deep at '", path.string(), "' (a cycle?)");
  Json own = load_toml_file(path);
  Json merged = Json::object();
  if (own.contains("base")) {
    const Json& base = own["base"];
    std::vector<std::string> names;
    if (base.is_string()) {
      names.push_back(base.get<std::string>());
    } else {
      require(base.is_array(), "config ", path.string(), ": 'base' must be a preset name or an array of names");
      for (const auto& item : base) {
        require(item.is_string(), "config ", path.string(), ": 'base' must be a preset name or an array of names");
        names.push_back(item.get<std::string>());
      }
    }
    for (const auto& name : names) merge_into(merged, load_with_bases(resolve_preset(name), depth + 1));
    own.erase("base");
  }
  merge_into(merged, own);
  return merged;
}
}  // namespace

Json load_config_file(const std::filesystem::path& path) { return load_with_bases(path, 0); }

std::filesystem::path presets_dir() {
  if (const char* env = std::getenv("ONESTEP_CONFIGS")) return env;
  return std::filesystem::path(ONESTEP_SOURCE_DIR) / "configs";
}

std::vector<std::string> list_presets() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(presets_dir(), ec))
    if (entry.path().extension() == ".toml") names.push_back(entry.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::filesystem::path resolve_preset(const std::string& name_or_path) {
  std::filesystem::path direct(name_or_path);
  if (std::filesystem::is_regular_file(direct)) return direct;
  std::filesystem::path preset = presets_dir() / (name_or_path + ".toml");
  if (std::filesystem::is_regular_file(preset)) return preset;
  std::string names;
  for (const auto& n : list_presets()) names += (names.empty() ? "" : ", ") + n;
  fail("config: '", name_or_path, "' is neither a file nor a preset (presets: ", names, ")");
}

void apply_override(Json& root, const std::string& assignment) {
  const auto eq = assignment.find('=');
  require(eq != std::string::npos && eq > 0, "--set expects section.key=value, got '", assignment, "'");
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const auto dot = path.find('.');
  require(dot != std::string::npos && dot > 0 && dot + 1 < path.size(),
          "--set expects section.key=value, got '", assignment, "'");
  const std::string section = path.substr(0, dot);
  const std::string key = path.substr(dot + 1);
  Json value;
  try {
    toml::table parsed = toml::parse("v = " + text);
    value = node_to_json(*parsed.get("v"));
  } catch (const toml::parse_error&) {
    value = text;  // a bare word: a string
  }
  Json& target = root[section];
  require(target.is_object() || target.is_null(), "--set: '", section, "' is not a section");
  target[key] = value;
}

std::string to_toml(const Json& root) {
  toml::table table;
  json_to_table(root, table);
  std::ostringstream out;
  out << table << "\n";
  return out.str();
}

SectionReader::SectionReader(const Json& root, std::string section) : section_(std::move(section)) {
  if (root.is_object() && root.contains(section_)) {
    section_json_ = root.at(section_);
    require(section_json_.is_object(), "config: [", section_, "] must be a table");
  } else {
    section_json_ = Json::object();
  }
}

const Json* SectionReader::find(const std::string& key) {
  known_.insert(key);
  auto it = section_json_.find(key);
  return it == section_json_.end() ? nullptr : &*it;
}

bool SectionReader::has(const std::string& key) const { return section_json_.contains(key); }

bool SectionReader::get_bool(const std::string& key, bool fallback) {
  const Json* v = find(key);
  if (!v) return fallback;
  require(v->is_boolean(), "config: ", name(key), " must be true or false, got ", type_name(*v), " ", shown(*v));
  return v->get<bool>();
}

int64_t SectionReader::get_int(const std::string& key, int64_t fallback) {
  const Json* v = find(key);
  if (!v) return fallback;
  require(v->is_number_integer(), "config: ", name(key), " must be an integer, got ", type_name(*v), " ", shown(*v));
  check_config_bound(name(key), v->get<int64_t>());
  return v->get<int64_t>();
}

double SectionReader::get_float(const std::string& key, double fallback) {
  const Json* v = find(key);
  if (!v) return fallback;
  require(v->is_number() && !v->is_boolean(), "config: ", name(key), " must be a number, got ", type_name(*v), " ",
          shown(*v));
  const double x = v->get<double>();
  require(std::isfinite(x), "config: ", name(key), " must be finite, got ", x);  // JSON would print inf as null
  check_config_bound(name(key), x);
  return x;
}

std::string SectionReader::get_string(const std::string& key, const std::string& fallback,
                                      std::initializer_list<const char*> choices) {
  return get_choice(key, fallback, std::vector<std::string>(choices.begin(), choices.end()));
}

std::string SectionReader::get_choice(const std::string& key, const std::string& fallback,
                                      const std::vector<std::string>& choices) {
  const Json* v = find(key);
  std::string value = fallback;
  if (v) {
    require(v->is_string(), "config: ", name(key), " must be a string, got ", type_name(*v), " ", shown(*v));
    value = v->get<std::string>();
  }
  if (!choices.empty()) {
    std::string list;
    bool ok = false;
    for (const std::string& c : choices) {
      ok = ok || value == c;
      list += (list.empty() ? "" : ", ") + c;
    }
    require(ok, "config: ", name(key), " must be one of ", list, " (got '", value, "')");
  }
  return value;
}

std::vector<int64_t> SectionReader::get_ints(const std::string& key, const std::vector<int64_t>& fallback) {
  const Json* v = find(key);
  if (!v) return fallback;
  require(v->is_array(), "config: ", name(key), " must be an array of integers, got ", type_name(*v));
  std::vector<int64_t> out;
  for (const auto& item : *v) {
    require(item.is_number_integer(), "config: ", name(key), " must be an array of integers, got ", shown(*v));
    check_config_bound(name(key), item.get<int64_t>());
    out.push_back(item.get<int64_t>());
  }
  return out;
}

std::vector<double> SectionReader::get_floats(const std::string& key, const std::vector<double>& fallback) {
  const Json* v = find(key);
  if (!v) return fallback;
  require(v->is_array(), "config: ", name(key), " must be an array of numbers, got ", type_name(*v));
  std::vector<double> out;
  for (const auto& item : *v) {
    require(item.is_number() && !item.is_boolean(), "config: ", name(key), " must be an array of numbers, got ",
            shown(*v));
    out.push_back(item.get<double>());
  }
  return out;
}

std::vector<std::string> SectionReader::get_strings(const std::string& key,
                                                    const std::vector<std::string>& fallback) {
  const Json* v = find(key);
  if (!v) return fallback;
  require(v->is_array(), "config: ", name(key), " must be an array of strings, got ", type_name(*v));
  std::vector<std::string> out;
  for (const auto& item : *v) {
    require(item.is_string(), "config: ", name(key), " must be an array of strings, got ", v->dump());
    out.push_back(item.get<std::string>());
  }
  return out;
}

void SectionReader::finish() const {
  for (auto it = section_json_.begin(); it != section_json_.end(); ++it) {
    if (known_.count(it.key())) continue;
    std::string valid;
    for (const auto& k : known_) valid += (valid.empty() ? "" : ", ") + k;
    fail("config: unknown key '", name(it.key()), "' (valid keys of [", section_, "]: ", valid, ")");
  }
}

void check_sections(const Json& root, std::initializer_list<const char*> sections) {
  require(root.is_object(), "config: the configuration must be a table");
  for (auto it = root.begin(); it != root.end(); ++it) {
    bool ok = false;
    std::string list;
    for (const char* s : sections) {
      ok = ok || it.key() == s;
      list += (list.empty() ? "" : ", ") + std::string(s);
    }
    require(ok, "config: unknown section [", it.key(), "] (valid sections: ", list, ")");
    require(it.value().is_object(), "config: [", it.key(), "] must be a table");
  }
}

}  // namespace onestep
