// IDX files (LeCun's MNIST format, also Fashion-MNIST), gzip-compressed or raw.
// Layout: 2 zero bytes, a type byte (0x08 = unsigned byte), a dimension count, big-endian uint32 sizes, then data.
#include "data/formats.h"

#include "core/error.h"

#include <zlib.h>

namespace onestep {
namespace {

// gzread also reads files that are not gzip-compressed, so one path serves both.
std::string read_maybe_gzip(const std::filesystem::path& path) {
  require(std::filesystem::is_regular_file(path), "IDX file ", path.string(), " does not exist");
  gzFile f = gzopen(path.string().c_str(), "rb");
  require(f != nullptr, "cannot open IDX file ", path.string());
  std::string out;
  char buffer[1 << 16];
  while (true) {
    const int n = gzread(f, buffer, sizeof(buffer));
    if (n < 0) {
      int code = 0;
      std::string message = gzerror(f, &code);
      gzclose(f);
      fail("IDX file ", path.string(), ": corrupt gzip data (", message, ")");
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  // A gzip stream cut short reads as a clean EOF but gzclose reports the missing trailer.
  const int close_code = gzclose(f);
  require(close_code == Z_OK, "IDX file ", path.string(), ": truncated or corrupt gzip stream");
  return out;
}

uint32_t big_endian_u32(const std::string& bytes, size_t offset) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data()) + offset;
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

torch::Tensor read_idx(const std::filesystem::path& path, int expected_dims) {
  const std::string bytes = read_maybe_gzip(path);
  const std::string name = "IDX file " + path.string();
  require(bytes.size() >= 4, name, ": too short for a header (", bytes.size(), " bytes)");
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  require(p[0] == 0 && p[1] == 0, name, ": bad magic number (not an IDX file)");
  require(p[2] == 0x08, name, ": element type 0x", std::hex, int(p[2]), std::dec, " is not unsigned byte (0x08)");
  const int dims = p[3];
  require(dims == expected_dims, name, ": expected ", expected_dims, " dimensions (",
          expected_dims == 3 ? "images" : "labels", "), header says ", dims);
  const size_t header = 4 + 4 * static_cast<size_t>(dims);
  require(bytes.size() >= header, name, ": truncated header");
  std::vector<int64_t> shape;
  uint64_t count = 1;
  for (int d = 0; d < dims; ++d) {
    const uint32_t s = big_endian_u32(bytes, 4 + 4 * d);
    require(s > 0 && s < (1u << 28), name, ": implausible dimension ", d, " size ", s);
    shape.push_back(s);
    count *= s;
    require(count < (uint64_t(1) << 40), name, ": declared size too large");
  }
  const uint64_t have = bytes.size() - header;
  require(have >= count, name, ": truncated: header declares ", count, " data bytes, file has ", have);
  require(have == count, name, ": ", have - count, " unexpected trailing bytes after the declared data");
  torch::Tensor t = torch::empty(shape, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), bytes.data() + header, count);
  return t;
}

std::filesystem::path find_variant(const std::filesystem::path& dir, const std::string& stem) {
  for (const std::string& candidate : {stem + ".gz", stem}) {
    if (std::filesystem::is_regular_file(dir / candidate)) return dir / candidate;
  }
  fail("dataset directory ", dir.string(), " has no ", stem, "(.gz)");
}

void check_pair(const torch::Tensor& images, const torch::Tensor& labels, const std::string& what) {
  require(images.size(0) == labels.size(0), what, ": ", images.size(0), " images but ", labels.size(0), " labels");
}

}  // namespace

torch::Tensor read_idx_images(const std::filesystem::path& path) { return read_idx(path, 3).unsqueeze(1); }

torch::Tensor read_idx_labels(const std::filesystem::path& path) { return read_idx(path, 1).to(torch::kInt64); }

Dataset load_idx_directory(const std::filesystem::path& dir, const std::string& split, const std::string& name) {
  require(std::filesystem::is_directory(dir), name, " directory ", dir.string(), " does not exist");
  require(split == "train" || split == "test", "unknown split '", split, "' (train|test)");
  const std::string prefix = split == "train" ? "train" : "t10k";
  Dataset d;
  d.samples = read_idx_images(find_variant(dir, prefix + "-images-idx3-ubyte"));
  d.labels = read_idx_labels(find_variant(dir, prefix + "-labels-idx1-ubyte"));
  check_pair(d.samples, d.labels, name + " " + dir.string());
  d.num_classes = d.labels.max().item<int64_t>() + 1;
  d.name = name;
  return d;
}

Dataset load_idx_file(const std::filesystem::path& images_file) {
  Dataset d;
  d.samples = read_idx_images(images_file);
  d.name = "idx";
  const std::string file = images_file.filename().string();
  const auto at = file.find("images-idx3");
  if (at != std::string::npos) {
    std::string label_file = file;
    label_file.replace(at, 11, "labels-idx1");
    const auto label_path = images_file.parent_path() / label_file;
    if (std::filesystem::is_regular_file(label_path)) {
      d.labels = read_idx_labels(label_path);
      check_pair(d.samples, d.labels, "IDX " + images_file.string());
      d.num_classes = d.labels.max().item<int64_t>() + 1;
    }
  }
  return d;
}

}  // namespace onestep
