#pragma once
// Minimal zip archives: a reader (central directory, stored and deflate entries, CRC-checked, zip64 sizes) and
// a writer of stored entries. Used by the zip image dataset and by .npz files.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;  // 0 stored, 8 deflate
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;
  uint64_t local_header_offset = 0;
};

class ZipReader {
 public:
  explicit ZipReader(const std::filesystem::path& path);  // reads the whole archive into memory
  ZipReader(std::string bytes, std::string source_name);
  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;
  std::string read(const ZipEntry& entry) const;  // decompressed, CRC-checked
  const std::string& source_name() const { return source_; }

 private:
  void parse();
  std::string bytes_;
  std::string source_;
  std::vector<ZipEntry> entries_;
};

// A zip with every (name, data) stored uncompressed, CRC-32 filled in.
std::string build_stored_zip(const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace onestep
