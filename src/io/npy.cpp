// NumPy .npy format (numpy/lib/format.py documents it): magic "\x93NUMPY", version, header length, a Python
// dict literal {'descr', 'fortran_order', 'shape'} padded with spaces to a multiple of 64, then raw data.
#include "io/npy.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/zip.h"

#include <fstream>
#include <regex>
#include <sstream>

namespace onestep {
namespace {

const std::string kMagic = "\x93NUMPY";

std::string descr_of(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "<f4";
    case torch::kFloat64: return "<f8";
    case torch::kUInt8: return "|u1";
    case torch::kInt64: return "<i8";
    case torch::kInt32: return "<i4";
    default: fail("cannot write dtype ", t, " to .npy (float32, float64, uint8, int64, int32)");
  }
}

torch::ScalarType type_of(const std::string& descr, const std::string& source) {
  if (descr == "<f4") return torch::kFloat32;
  if (descr == "<f8") return torch::kFloat64;
  if (descr == "|u1" || descr == "<u1") return torch::kUInt8;
  if (descr == "<i8") return torch::kInt64;
  if (descr == "<i4") return torch::kInt32;
  if (!descr.empty() && descr[0] == '>') fail(source, ": big-endian dtype '", descr, "' is not supported");
  fail(source, ": unsupported dtype '", descr, "' (supported: <f4 <f8 |u1 <i8 <i4)");
}

std::string read_whole_file(const std::filesystem::path& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open ", what, " ", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string read_entry_name(std::string name) {
  if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") name.resize(name.size() - 4);
  return name;
}

}  // namespace

std::string encode_npy(const torch::Tensor& array) {
  require(array.defined(), "encode_npy: undefined tensor");
  const std::string descr = descr_of(array.scalar_type());
  std::ostringstream shape;
  shape << "(";
  for (int64_t i = 0; i < array.dim(); ++i) shape << array.size(i) << (array.dim() == 1 || i + 1 < array.dim() ? ", " : "");
  shape << ")";
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape.str() + ", }";
  // Pad so that magic + version + length + dict + '\n' is a multiple of 64 (numpy's alignment).
  const size_t base = kMagic.size() + 2 + 2;
  size_t total = base + dict.size() + 1;
  const size_t padded = (total + 63) / 64 * 64;
  dict += std::string(padded - total, ' ') + "\n";
  require(dict.size() < 65536, "encode_npy: header too long");
  std::string out = kMagic;
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<char>(dict.size() & 0xFF));
  out.push_back(static_cast<char>(dict.size() >> 8));
  out += dict;
  torch::Tensor c = array.to(torch::kCPU).contiguous();
  out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return out;
}

torch::Tensor decode_npy(const std::string& bytes, const std::string& source_name) {
  const std::string& src = source_name;
  require(bytes.size() >= 10 && bytes.compare(0, kMagic.size(), kMagic) == 0, src, ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (size_t(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    require(bytes.size() >= 12, src, ": truncated .npy header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    fail(src, ": unsupported .npy format version ", major);
  }
  require(bytes.size() >= header_start + header_len, src, ": truncated .npy header");
  const std::string header = bytes.substr(header_start, header_len);
  std::smatch m;
  require(std::regex_search(header, m, std::regex("'descr'\\s*:\\s*'([^']*)'")), src, ": .npy header has no descr: ",
          header);
  const torch::ScalarType type = type_of(m[1].str(), src);
  require(std::regex_search(header, m, std::regex("'fortran_order'\\s*:\\s*(True|False)")), src,
          ": .npy header has no fortran_order");
  require(m[1].str() == "False", src, ": Fortran-order arrays are not supported (save with C order)");
  require(std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")), src, ": .npy header has no shape");
  std::vector<int64_t> shape;
  const std::string dims = m[1].str();
  const std::regex number("\\d+");
  uint64_t count = 1;
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it) {
    const int64_t d = std::stoll(it->str());
    shape.push_back(d);
    count *= static_cast<uint64_t>(d);
    require(count < (uint64_t(1) << 40), src, ": declared shape too large");
  }
  torch::Tensor t = torch::empty(shape, type);
  const uint64_t need = count * t.element_size();
  const uint64_t have = bytes.size() - header_start - header_len;
  require(have >= need, src, ": truncated data: shape needs ", need, " bytes, file has ", have);
  require(have == need, src, ": ", have - need, " unexpected trailing bytes");
  if (need > 0) std::memcpy(t.data_ptr(), bytes.data() + header_start + header_len, need);
  return t;
}

void write_npy(const std::filesystem::path& path, const torch::Tensor& array) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  write_text_atomically(path, encode_npy(array));
}

torch::Tensor read_npy(const std::filesystem::path& path) {
  return decode_npy(read_whole_file(path, ".npy file"), path.string());
}

void write_npz(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& arrays) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& [name, array] : arrays) {
    require(!name.empty(), "write_npz ", path.string(), ": empty array name");
    files.emplace_back(name + ".npy", encode_npy(array));
  }
  const std::string bytes = build_stored_zip(files);
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  write_text_atomically(path, bytes);
}

std::map<std::string, torch::Tensor> read_npz(const std::filesystem::path& path) {
  require(std::filesystem::is_regular_file(path), ".npz file ", path.string(), " does not exist");
  ZipReader zip(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& entry : zip.entries()) {
    out[read_entry_name(entry.name)] = decode_npy(zip.read(entry), path.string() + ":" + entry.name);
  }
  return out;
}

}  // namespace onestep
