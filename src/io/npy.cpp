// NumPy .npy format (numpy/lib/format.py documents it): magic "\x93NUMPY", version, header length, a Python
// dict literal {'descr', 'fortran_order', 'shape'} padded with spaces to a multiple of 64, then raw data.
#include "io/npy.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/zip.h"

#include <charconv>
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
  require(!std::filesystem::is_directory(path), what, " ", path.string(), " is a directory, not a file");
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open ", what, " ", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// The inside of the shape tuple ("", "3,", "4, 2"): every entry a non-negative integer below 2^63.
std::vector<int64_t> parse_shape(const std::string& text, const std::string& source) {
  std::vector<int64_t> shape;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    item.erase(0, std::min(item.size(), item.find_first_not_of(" \t\n")));
    const size_t last = item.find_last_not_of(" \t\nL");  // Python 2 wrote longs as "3L"
    item.erase(last == std::string::npos ? 0 : last + 1);
    if (!item.empty()) {
      require(item[0] != '-', source, ": negative dimension ", item, " in the .npy shape (", text, ")");
      int64_t d = 0;
      auto [ptr, error] = std::from_chars(item.data(), item.data() + item.size(), d);
      require(error != std::errc::result_out_of_range, source, ": dimension ", item,
              " in the .npy shape is too large");
      require(error == std::errc() && ptr == item.data() + item.size(), source, ": malformed .npy shape (", text,
              ")");
      shape.push_back(d);
    } else {
      require(end == text.size(), source, ": malformed .npy shape (", text, ")");
    }
    start = end + 1;
  }
  return shape;
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
  const bool fortran_order = m[1].str() == "True";
  require(std::regex_search(header, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)")), src, ": .npy header has no shape");
  const std::vector<int64_t> shape = parse_shape(m[1].str(), src);

  // The declared size is compared with the bytes present before anything is allocated.
  uint64_t need = c10::elementSize(type);
  for (int64_t d : shape)
    require(!__builtin_mul_overflow(need, static_cast<uint64_t>(d), &need), src, ": declared shape ",
            shape_text(shape), " overflows 64 bits");
  const uint64_t have = bytes.size() - header_start - header_len;
  require(have >= need, src, ": truncated data: shape ", shape_text(shape), " needs ", need, " bytes, the file has ",
          have);
  require(have == need, src, ": ", have - need, " unexpected trailing bytes after the data of shape ",
          shape_text(shape));
  // Fortran (column-major) order, as np.asfortranarray writes: the bytes are the C-order array of the reversed
  // shape, whose axes reversed give the array.
  const std::vector<int64_t> stored = fortran_order ? std::vector<int64_t>(shape.rbegin(), shape.rend()) : shape;
  torch::Tensor t = torch::empty(stored, type);
  if (need > 0) std::memcpy(t.data_ptr(), bytes.data() + header_start + header_len, need);
  if (!fortran_order) return t;
  std::vector<int64_t> axes(shape.size());
  for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(axes.size() - 1 - i);
  return t.permute(axes).contiguous();
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
