#include "io/safetensors.h"

#include "core/error.h"
#include "io/atomic_file.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

namespace onestep {
namespace {

using Json = nlohmann::json;

// The header is read whole into memory, so bound it (the reference implementation uses 100 MB too).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
constexpr int64_t kMaxDims = 16;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2}, {"BF16", torch::kBFloat16, 2},
    {"F64", torch::kFloat64, 8}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"U8", torch::kUInt8, 1},    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

uint64_t read_le_u64(const std::string& bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
  return value;
}

std::string le_u64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xff);
  return out;
}

// Reads a JSON number as a non-negative integer that fits in uint64 (rejects floats, negatives).
uint64_t non_negative_int(const Json& value, const std::string& what) {
  require(value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0), what,
          " must be a non-negative integer, got ", value.dump());
  return value.get<uint64_t>();
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

// The header length from the file's first 8 bytes, checked against the limit and the file's size.
uint64_t checked_header_length(const std::string& first_bytes, uint64_t file_size, const std::string& where) {
  require(file_size >= 8 && first_bytes.size() >= 8, where, ": file is ", file_size,
          " bytes, shorter than the 8-byte header length");
  const uint64_t header_len = read_le_u64(first_bytes);
  require(header_len <= kMaxHeaderBytes, where, ": header length ", header_len, " exceeds the limit of ",
          kMaxHeaderBytes, " bytes");
  require(header_len <= file_size - 8, where, ": header length ", header_len, " runs past the end of the file (",
          file_size, " bytes)");
  return header_len;
}

// The header as a JSON object. Duplicate top-level names would silently shadow each other in a JSON object: catch
// them while parsing.
Json parse_header(const std::string& header_text, const std::string& where) {
  std::set<std::string> seen;
  std::string duplicate;
  Json header;
  try {
    header = Json::parse(header_text, [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (depth == 1 && event == Json::parse_event_t::key) {
        const auto key = parsed.get<std::string>();
        if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
      }
      return true;
    });
  } catch (const Json::exception& e) {
    fail(where, ": header is not valid JSON (", e.what(), ")");
  }
  require(duplicate.empty(), where, ": tensor name '", duplicate, "' appears twice in the header");
  require(header.is_object(), where, ": header must be a JSON object");
  return header;
}

std::map<std::string, std::string> metadata_of(const Json& info, const std::string& where) {
  require(info.is_object(), where, ": __metadata__ must be an object of strings");
  std::map<std::string, std::string> metadata;
  for (const auto& [key, value] : info.items()) {
    require(value.is_string(), where, ": __metadata__ value for '", key, "' is not a string");
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

}  // namespace

const torch::Tensor* SafetensorsContent::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

namespace {

// The header entry of one tensor: its dtype, a shape whose bytes fit in the file, and data_offsets matching them.
Entry parse_entry(const std::string& name, const Json& info, uint64_t data_size, const std::string& where) {
  const std::string what = where + ": tensor '" + name + "'";
  require(info.is_object(), what, ": entry must be an object");
  for (const auto& [key, value] : info.items()) {
    (void)value;
    require(key == "dtype" || key == "shape" || key == "data_offsets", what, ": unexpected field '", key, "'");
  }
  require(info.contains("dtype") && info["dtype"].is_string(), what, ": missing string field 'dtype'");
  require(info.contains("shape") && info["shape"].is_array(), what, ": missing array field 'shape'");
  require(info.contains("data_offsets") && info["data_offsets"].is_array() && info["data_offsets"].size() == 2, what,
          ": 'data_offsets' must be [begin, end]");
  Entry entry{name, dtype_by_name(info["dtype"].get<std::string>()), {}, 0, 0};
  require(entry.dtype != nullptr, what, ": unknown dtype '", info["dtype"].get<std::string>(),
          "' (supported: F32, F16, BF16, F64, I64, I32, U8, BOOL)");
  require(static_cast<int64_t>(info["shape"].size()) <= kMaxDims, what, ": ", info["shape"].size(),
          " dimensions (at most ", kMaxDims, ")");
  // Overflow-safe: every partial product stays below data_size, which is a real allocation.
  uint64_t numel = 1;
  bool too_large = false;
  for (const auto& dim_json : info["shape"]) {
    const uint64_t dim = non_negative_int(dim_json, what + ": shape dimension");
    require(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), what, ": shape dimension ", dim,
            " is absurd");
    entry.shape.push_back(static_cast<int64_t>(dim));
    if (dim != 0 && numel > data_size / dim) too_large = true;
    numel = too_large ? numel : numel * dim;
  }
  if (std::find(entry.shape.begin(), entry.shape.end(), 0) != entry.shape.end()) {
    numel = 0;
    too_large = false;
  }
  require(!too_large && numel <= data_size / entry.dtype->size, what, ": shape ", info["shape"].dump(),
          " needs more bytes than the file holds (", data_size, ")");
  entry.begin = non_negative_int(info["data_offsets"][0], what + ": data_offsets");
  entry.end = non_negative_int(info["data_offsets"][1], what + ": data_offsets");
  require(entry.begin <= entry.end, what, ": data_offsets [", entry.begin, ", ", entry.end, "] are reversed");
  require(entry.end <= data_size, what, ": data_offsets [", entry.begin, ", ", entry.end,
          "] run past the end of the data (", data_size, " bytes)");
  require(entry.end - entry.begin == numel * entry.dtype->size, what, ": shape ", info["shape"].dump(), " of ",
          entry.dtype->name, " needs ", numel * entry.dtype->size, " bytes but data_offsets give ",
          entry.end - entry.begin);
  return entry;
}

// The data must be covered exactly once, in order: no overlaps (aliasing) and no holes (hidden bytes). Sorts
// `entries` by offset.
void check_coverage(std::vector<Entry>& entries, uint64_t data_size, const std::string& where) {
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const auto& entry : entries) {
    require(entry.begin >= cursor, where, ": tensor '", entry.name, "' overlaps the previous tensor (offset ",
            entry.begin, " < ", cursor, ")");
    require(entry.begin == cursor, where, ": gap before tensor '", entry.name, "' (offset ", entry.begin,
            ", expected ", cursor, ")");
    cursor = entry.end;
  }
  require(cursor == data_size, where, ": ", data_size - cursor, " trailing bytes after the last tensor");
}

torch::Tensor read_tensor(const Entry& entry, const char* data, const std::string& where) {
  torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(entry.dtype->type));
  const uint64_t n = entry.end - entry.begin;
  if (n > 0) std::memcpy(tensor.data_ptr(), data + entry.begin, n);
  if (entry.dtype->type == torch::kBool) {
    const auto* raw = reinterpret_cast<const unsigned char*>(data + entry.begin);
    for (uint64_t i = 0; i < n; ++i)
      require(raw[i] <= 1, where, ": tensor '", entry.name, "' holds a BOOL byte that is neither 0 nor 1");
  }
  return tensor;
}

}  // namespace

SafetensorsContent parse_safetensors(const std::string& bytes, const std::string& source_name) {
  const std::string where = "safetensors '" + source_name + "'";
  const uint64_t header_len = checked_header_length(bytes, bytes.size(), where);
  const Json header = parse_header(bytes.substr(8, header_len), where);
  const uint64_t data_size = bytes.size() - 8 - header_len;
  const char* data = bytes.data() + 8 + header_len;

  SafetensorsContent content;
  std::vector<Entry> entries;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__")
      content.metadata = metadata_of(info, where);
    else
      entries.push_back(parse_entry(name, info, data_size, where));
  }
  check_coverage(entries, data_size, where);
  for (const auto& entry : entries) content.tensors.emplace_back(entry.name, read_tensor(entry, data, where));
  return content;
}

SafetensorsContent load_safetensors(const std::filesystem::path& path) {
  return parse_safetensors(read_file_bytes(path), path.string());
}

std::map<std::string, std::string> read_safetensors_metadata(const std::filesystem::path& path) {
  const std::string where = "safetensors '" + path.string() + "'";
  std::ifstream in(path, std::ios::binary);
  require(in.good(), where, ": cannot open");
  in.seekg(0, std::ios::end);
  const auto size = static_cast<uint64_t>(std::max<std::streamoff>(in.tellg(), 0));
  in.seekg(0);
  std::string length_bytes(8, '\0');
  if (size < 8 || !in.read(length_bytes.data(), 8)) length_bytes.clear();
  const uint64_t header_len = checked_header_length(length_bytes, size, where);
  std::string header_text(header_len, '\0');
  require(static_cast<bool>(in.read(header_text.data(), static_cast<std::streamsize>(header_len))), where,
          ": cannot read the header");
  const Json header = parse_header(header_text, where);
  return header.contains("__metadata__") ? metadata_of(header["__metadata__"], where)
                                         : std::map<std::string, std::string>{};
}

void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    require(name != "__metadata__", "safetensors '", path.string(), "': '__metadata__' is not a tensor name");
    require(names.insert(name).second, "safetensors '", path.string(), "': tensor name '", name, "' given twice");
    require(tensor.defined(), "safetensors '", path.string(), "': tensor '", name, "' is undefined");
    const DtypeInfo* dtype = dtype_by_type(tensor.scalar_type());
    require(dtype != nullptr, "safetensors '", path.string(), "': tensor '", name, "' has unsupported dtype ",
            tensor.scalar_type());
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t n = static_cast<uint64_t>(t.numel()) * dtype->size;
    header[name] = {{"dtype", dtype->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    contiguous.push_back(std::move(t));
  }
  std::string header_text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned (what the reference writer does).
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  write_file_atomically(path, [&](std::ostream& out) {
    out << le_u64(header_text.size()) << header_text;
    for (const auto& t : contiguous)
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  });
}

}  // namespace onestep
