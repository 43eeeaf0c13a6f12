// Zip format after PKWARE's APPNOTE: end-of-central-directory (EOCD) record, optional zip64 EOCD,
// central directory entries, local headers before each entry's data.
#include "io/zip.h"

#include "core/error.h"

#include <zlib.h>

#include <fstream>
#include <sstream>

namespace onestep {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50,
                   kZip64EocdSig = 0x06064b50, kZip64LocatorSig = 0x07064b50;

struct Cursor {
  const std::string& bytes;
  const std::string& source;
  uint64_t at;
  void need(uint64_t n) const {
    require(at <= bytes.size() && n <= bytes.size() - at, "zip ", source, ": truncated or bad offset (need ", n,
            " bytes at ", at, ", file has ", bytes.size(), ")");
  }
  uint64_t le(int n) {
    need(n);
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(static_cast<unsigned char>(bytes[at + i])) << (8 * i);
    at += n;
    return v;
  }
  std::string take(uint64_t n) {
    need(n);
    std::string s = bytes.substr(at, n);
    at += n;
    return s;
  }
};

void put(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint32_t crc_of(const std::string& data) {
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < data.size()) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(data.size() - done, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data() + done), chunk);
    done += chunk;
  }
  return static_cast<uint32_t>(crc);
}

std::string inflate_raw(const std::string& in, uint64_t expected, const std::string& what) {
  std::string out(expected, '\0');
  z_stream s{};
  require(inflateInit2(&s, -MAX_WBITS) == Z_OK, what, ": cannot initialise zlib");
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  char extra = 0;
  int rc = inflate(&s, Z_FINISH);
  if (rc == Z_BUF_ERROR && s.avail_out == 0) {
    // Output full but stream not finished: more data than declared.
    s.next_out = reinterpret_cast<Bytef*>(&extra);
    s.avail_out = 1;
    rc = inflate(&s, Z_FINISH);
    inflateEnd(&s);
    fail(what, ": inflated data is larger than the declared ", expected, " bytes");
  }
  const uint64_t produced = s.total_out;
  inflateEnd(&s);
  require(rc == Z_STREAM_END, what, ": corrupt deflate data (zlib code ", rc, ")");
  require(produced == expected, what, ": inflated to ", produced, " bytes, declared ", expected);
  return out;
}

}  // namespace

ZipReader::ZipReader(const std::filesystem::path& path) : source_(path.string()) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open zip file ", source_);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  bytes_ = buffer.str();
  parse();
}

ZipReader::ZipReader(std::string bytes, std::string source_name)
    : bytes_(std::move(bytes)), source_(std::move(source_name)) {
  parse();
}

void ZipReader::parse() {
  require(bytes_.size() >= 22, "zip ", source_, ": too short to be a zip archive (", bytes_.size(), " bytes)");
  // The EOCD sits at the end, followed by a comment of at most 65535 bytes.
  int64_t eocd = -1;
  const int64_t lowest = std::max<int64_t>(0, static_cast<int64_t>(bytes_.size()) - 22 - 65535);
  for (int64_t i = static_cast<int64_t>(bytes_.size()) - 22; i >= lowest; --i) {
    Cursor c{bytes_, source_, static_cast<uint64_t>(i)};
    if (c.le(4) == kEocdSig) {
      eocd = i;
      break;
    }
  }
  require(eocd >= 0, "zip ", source_, ": no end-of-central-directory record (not a zip or truncated)");
  Cursor e{bytes_, source_, static_cast<uint64_t>(eocd) + 10};
  uint64_t count = e.le(2);
  uint64_t cd_size = e.le(4);
  uint64_t cd_offset = e.le(4);
  if ((count == 0xFFFF || cd_offset == 0xFFFFFFFF || cd_size == 0xFFFFFFFF) && eocd >= 20) {
    Cursor loc{bytes_, source_, static_cast<uint64_t>(eocd) - 20};
    if (loc.le(4) == kZip64LocatorSig) {
      loc.le(4);
      Cursor z{bytes_, source_, loc.le(8)};
      require(z.le(4) == kZip64EocdSig, "zip ", source_, ": bad zip64 end-of-central-directory record");
      z.at += 8 + 2 + 2 + 4 + 4 + 8;
      count = z.le(8);
      cd_size = z.le(8);
      cd_offset = z.le(8);
    }
  }
  Cursor c{bytes_, source_, cd_offset};
  c.need(cd_size);
  for (uint64_t k = 0; k < count; ++k) {
    require(c.le(4) == kCentralSig, "zip ", source_, ": bad central directory entry ", k, " (corrupt offset)");
    c.at += 2 + 2 + 2;  // versions, flags
    ZipEntry entry;
    entry.method = static_cast<uint16_t>(c.le(2));
    c.at += 4;  // time, date
    entry.crc32 = static_cast<uint32_t>(c.le(4));
    entry.compressed_size = c.le(4);
    entry.size = c.le(4);
    const uint64_t name_len = c.le(2), extra_len = c.le(2), comment_len = c.le(2);
    c.at += 2 + 2 + 4;  // disk, internal, external attributes
    entry.local_header_offset = c.le(4);
    entry.name = c.take(name_len);
    const uint64_t extra_end = c.at + extra_len;
    c.need(extra_len);
    while (c.at + 4 <= extra_end) {
      const uint64_t id = c.le(2), len = c.le(2);
      const uint64_t next = c.at + len;
      require(next <= extra_end, "zip ", source_, ": bad extra field in entry ", entry.name);
      if (id == 0x0001) {  // zip64: only the fields that are saturated in the fixed header, in this order
        if (entry.size == 0xFFFFFFFF && c.at + 8 <= next) entry.size = c.le(8);
        if (entry.compressed_size == 0xFFFFFFFF && c.at + 8 <= next) entry.compressed_size = c.le(8);
        if (entry.local_header_offset == 0xFFFFFFFF && c.at + 8 <= next) entry.local_header_offset = c.le(8);
      }
      c.at = next;
    }
    c.at = extra_end + comment_len;
    require(entry.method == 0 || entry.method == 8, "zip ", source_, ": entry ", entry.name,
            " uses unsupported compression method ", entry.method, " (only stored and deflate)");
    entries_.push_back(std::move(entry));
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::string ZipReader::read(const ZipEntry& entry) const {
  const std::string what = "zip " + source_ + " entry " + entry.name;
  Cursor c{bytes_, source_, entry.local_header_offset};
  require(c.le(4) == kLocalSig, what, ": bad local header offset");
  c.at += 22;
  const uint64_t name_len = c.le(2), extra_len = c.le(2);
  c.at += name_len + extra_len;
  std::string raw = c.take(entry.compressed_size);
  std::string data;
  if (entry.method == 0) {
    require(entry.compressed_size == entry.size, what, ": stored entry with different sizes");
    data = std::move(raw);
  } else {
    data = inflate_raw(raw, entry.size, what);
  }
  require(crc_of(data) == entry.crc32, what, ": CRC-32 mismatch (corrupt data)");
  return data;
}

std::string build_stored_zip(const std::vector<std::pair<std::string, std::string>>& files) {
  std::string out, central;
  for (const auto& [name, data] : files) {
    require(data.size() < 0xFFFFFFFFull && out.size() < 0xFFFFFFFFull, "zip entry ", name,
            " too large for a plain zip (> 4 GiB)");
    const uint32_t crc = crc_of(data);
    const uint64_t offset = out.size();
    put(out, kLocalSig, 4);
    put(out, 20, 2);  // version needed
    put(out, 0, 2);   // flags
    put(out, 0, 2);   // stored
    put(out, 0, 2);   // time
    put(out, 0x21, 2);  // date 1980-01-01
    put(out, crc, 4);
    put(out, data.size(), 4);
    put(out, data.size(), 4);
    put(out, name.size(), 2);
    put(out, 0, 2);
    out += name;
    out += data;

    put(central, kCentralSig, 4);
    put(central, 20, 2);  // made by
    put(central, 20, 2);  // needed
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0x21, 2);
    put(central, crc, 4);
    put(central, data.size(), 4);
    put(central, data.size(), 4);
    put(central, name.size(), 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 2);
    put(central, 0, 4);
    put(central, offset, 4);
    central += name;
  }
  const uint64_t cd_offset = out.size();
  out += central;
  put(out, kEocdSig, 4);
  put(out, 0, 2);
  put(out, 0, 2);
  put(out, files.size(), 2);
  put(out, files.size(), 2);
  put(out, central.size(), 4);
  put(out, cd_offset, 4);
  put(out, 0, 2);
  return out;
}

}  // namespace onestep
