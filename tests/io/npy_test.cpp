#include "core/error.h"
#include "io/atomic_file.h"
#include "io/npy.h"
#include "io/zip.h"
#include "../data/temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"
#include "build_paths.h"

using onestep::Error;
using onestep::testing::TempDir;
using ::testing::HasSubstr;

namespace {
const std::filesystem::path kFixtures = std::filesystem::path(ONESTEP_TEST_FIXTURES) / "io";

using onestep::testing::error_of;
}  // namespace

TEST(Npy, RoundTripsEveryDtype) {
  TempDir dir("npy");
  std::vector<torch::Tensor> arrays = {
      torch::randn({3, 4}), torch::randn({2, 2, 2}, torch::kFloat64), torch::randint(0, 255, {7}, torch::kUInt8),
      torch::arange(6, torch::kInt64).reshape({2, 3}), torch::arange(5, torch::kInt32), torch::tensor(3.5f),
      torch::zeros({0, 2})};
  for (const auto& a : arrays) {
    onestep::write_npy(dir / "a.npy", a);
    torch::Tensor b = onestep::read_npy(dir / "a.npy");
    EXPECT_EQ(b.scalar_type(), a.scalar_type());
    EXPECT_TRUE(b.equal(a)) << a.sizes();
  }
  // Header is padded to a 64-byte boundary, as numpy does.
  const std::string bytes = onestep::encode_npy(torch::zeros({2}));
  EXPECT_EQ((bytes.size() - 8) % 64, 0u);
  EXPECT_EQ(bytes.substr(10, 48), "{'descr': '<f4', 'fortran_order': False, 'shape'");
  EXPECT_THROW(onestep::encode_npy(torch::zeros({2}, torch::kBool)), Error);
}

TEST(Npy, ReadsFilesWrittenByNumpy) {
  // Generated once with numpy (tests/fixtures/io/README.md): np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5.
  torch::Tensor f = onestep::read_npy(kFixtures / "f4_2x3.npy");
  EXPECT_TRUE(f.equal(torch::arange(6, torch::kFloat32).reshape({2, 3}) * 0.5));
  torch::Tensor u = onestep::read_npy(kFixtures / "u1_4.npy");
  EXPECT_TRUE(u.equal(torch::tensor({0, 1, 128, 255}, torch::kUInt8)));
  torch::Tensor i = onestep::read_npy(kFixtures / "i8_3_v2.npy");  // format version 2.0
  EXPECT_TRUE(i.equal(torch::tensor({int64_t{-1}, int64_t{0}, int64_t{1} << 40}, torch::kInt64)));
  // np.asfortranarray(np.arange(6.0).reshape(2, 3)): stored column by column, read as the same array.
  torch::Tensor fortran = onestep::read_npy(kFixtures / "f8_fortran.npy");
  EXPECT_TRUE(fortran.equal(torch::arange(6, torch::kFloat64).reshape({2, 3})));
  EXPECT_TRUE(fortran.is_contiguous());
  EXPECT_THAT(error_of([] { onestep::read_npy(kFixtures / "f4_bigendian.npy"); }), HasSubstr("big-endian"));
  for (const char* name : {"savez.npz", "savez_compressed.npz"}) {
    auto arrays = onestep::read_npz(kFixtures / name);
    ASSERT_EQ(arrays.size(), 2u) << name;
    EXPECT_TRUE(arrays["mu"].equal(torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64))) << name;
    EXPECT_TRUE(arrays["sigma"].equal(torch::eye(3, torch::kFloat64) * 2)) << name;
  }
}

TEST(Npy, RejectsCorruptInput) {
  const std::string good = onestep::encode_npy(torch::arange(4, torch::kFloat32));
  EXPECT_THAT(error_of([&] { onestep::decode_npy(good.substr(0, good.size() - 1), "t.npy"); }),
              HasSubstr("truncated"));
  EXPECT_THAT(error_of([&] { onestep::decode_npy(good.substr(0, 20), "t.npy"); }), HasSubstr("truncated"));
  EXPECT_THAT(error_of([&] { onestep::decode_npy("PK\x03\x04 garbage", "t.npy"); }), HasSubstr("bad magic"));
  std::string odd = good;
  odd.replace(odd.find("<f4"), 3, "<c8");
  EXPECT_THAT(error_of([&] { onestep::decode_npy(odd, "t.npy"); }), HasSubstr("unsupported dtype"));
  EXPECT_THAT(error_of([&] { onestep::decode_npy(good + "x", "t.npy"); }), HasSubstr("trailing"));
  EXPECT_THAT(error_of([] { onestep::read_npy("/nonexistent/a.npy"); }), HasSubstr("cannot open"));
}

// A header's shape is checked against the file size before anything is allocated; every
// message names the file.
TEST(Npy, ShapeIsCheckedAgainstTheDataBeforeAllocating) {
  const std::string good = onestep::encode_npy(torch::arange(8, torch::kFloat32));  // shape (8,), 32 bytes
  auto with_shape = [&](const std::string& shape) {
    std::string bytes = good;
    const size_t at = bytes.find("(8, )");
    bytes.replace(at, 5, shape + std::string(5 - std::min<size_t>(5, shape.size()), ' '));
    // Longer shapes would shift the data: take the growth out of the header's padding.
    if (shape.size() > 5) {
      const size_t grown = shape.size() - 5;
      const size_t newline = bytes.find('\n');
      bytes.erase(newline - grown, grown);  // the padding spaces before '\n'
    }
    return error_of([&] { onestep::decode_npy(bytes, "bad.npy"); });
  };
  EXPECT_EQ(with_shape("(8,)"), "(no error)");
  EXPECT_EQ(with_shape("(4, 2)"), "(no error)");
  EXPECT_THAT(with_shape("(18446744073709551616,)"), HasSubstr("bad.npy: dimension 18446744073709551616"));
  EXPECT_THAT(with_shape("(4294967296, 4294967296)"), HasSubstr("bad.npy: declared shape (4294967296, 4294967296) "
                                                              "overflows 64 bits"));
  EXPECT_THAT(with_shape("(1099511627775,)"), HasSubstr("bad.npy: truncated data: shape (1099511627775,) needs "
                                                       "4398046511100 bytes, the file has 32"));
  EXPECT_THAT(with_shape("(-4, 2)"), HasSubstr("bad.npy: negative dimension -4"));
  EXPECT_THAT(with_shape("(4, x)"), HasSubstr("bad.npy: malformed .npy shape"));
  EXPECT_THAT(with_shape("(2, 2)"), HasSubstr("bad.npy: 16 unexpected trailing bytes"));
}

TEST(Npz, WriteAndReadBack) {
  TempDir dir("npz");
  std::map<std::string, torch::Tensor> arrays = {{"mu", torch::randn({5}, torch::kFloat64)},
                                                 {"sigma", torch::randn({5, 5}, torch::kFloat64)}};
  onestep::write_npz(dir / "stats.npz", arrays);
  auto back = onestep::read_npz(dir / "stats.npz");
  ASSERT_EQ(back.size(), 2u);
  EXPECT_TRUE(back["mu"].equal(arrays["mu"]));
  EXPECT_TRUE(back["sigma"].equal(arrays["sigma"]));
}

TEST(Zip, DetectsBadOffsetsAndCrc) {
  const std::string zip = onestep::build_stored_zip({{"a.txt", "hello"}, {"b.txt", "world!"}});
  onestep::ZipReader ok(zip, "ok.zip");
  ASSERT_EQ(ok.entries().size(), 2u);
  EXPECT_EQ(ok.read(*ok.find("b.txt")), "world!");

  std::string bad_crc = zip;
  bad_crc[bad_crc.find("hello")] = 'j';
  onestep::ZipReader corrupt(bad_crc, "crc.zip");
  EXPECT_THAT(error_of([&] { corrupt.read(*corrupt.find("a.txt")); }), HasSubstr("CRC"));

  // Central directory offset (last 6..2 bytes of the EOCD) pointing past the end.
  std::string bad_offset = zip;
  bad_offset[bad_offset.size() - 4] = '\x7f';
  EXPECT_THAT(error_of([&] { onestep::ZipReader(bad_offset, "off.zip"); }), HasSubstr("off.zip"));

  // Local header offset of the first central entry (at byte 42 of the entry) moved.
  std::string bad_local = zip;
  const size_t central = bad_local.find("PK\x01\x02");
  bad_local[central + 42] = 3;
  onestep::ZipReader r(bad_local, "local.zip");
  EXPECT_THAT(error_of([&] { r.read(r.entries()[0]); }), HasSubstr("local header"));

  EXPECT_THAT(error_of([&] { onestep::ZipReader(zip.substr(0, zip.size() - 10), "cut.zip"); }),
              HasSubstr("cut.zip"));
  EXPECT_THROW(onestep::ZipReader(std::string("short"), "s.zip"), Error);
}

// What onestep writes is byte for byte what numpy writes for the same arrays (the fixtures above, made by np.save and
// np.savez), so numpy reads it as it reads its own files: the header dict, its padding to 64 bytes, the data. (A 1-D
// shape is written "(4, )" where numpy writes "(4,)"; numpy parses both, and the round trip above covers them.)
TEST(Npy, WritesTheBytesNumpyWrites) {
  EXPECT_EQ(onestep::encode_npy(torch::arange(6, torch::kFloat32).reshape({2, 3}) * 0.5),
            onestep::read_file_bytes(kFixtures / "f4_2x3.npy"));
  const onestep::ZipReader savez(kFixtures / "savez.npz");
  ASSERT_NE(savez.find("sigma.npy"), nullptr);
  EXPECT_EQ(onestep::encode_npy(torch::eye(3, torch::kFloat64) * 2), savez.read(*savez.find("sigma.npy")));
}
