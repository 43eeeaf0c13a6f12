#include "core/error.h"
#include "data/dataset.h"
#include "data/formats.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"
#include <zlib.h>

using onestep::Error;
using onestep::testing::TempDir;
using onestep::testing::write_bytes;
using ::testing::HasSubstr;

namespace {

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
}

std::string idx_images(int n, int h, int w) {
  std::string s = std::string("\0\0\x08\x03", 4) + be32(n) + be32(h) + be32(w);
  for (int i = 0; i < n * h * w; ++i) s.push_back(static_cast<char>(i % 251));
  return s;
}

std::string idx_labels(int n) {
  std::string s = std::string("\0\0\x08\x01", 4) + be32(n);
  for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(i % 10));
  return s;
}

void write_gzip(const std::filesystem::path& path, const std::string& bytes) {
  gzFile f = gzopen(path.string().c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

using onestep::testing::error_of;

}  // namespace

TEST(Idx, ReadsRawAndGzipImagesAndLabels) {
  TempDir dir("idx_ok");
  write_bytes(dir / "train-images-idx3-ubyte", idx_images(5, 3, 4));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", idx_labels(5));
  onestep::Dataset d = onestep::load_idx_directory(dir.path, "train", "mnist");
  ASSERT_EQ(d.samples.sizes(), (std::vector<int64_t>{5, 1, 3, 4}));
  EXPECT_EQ(d.samples[1][0][0][0].item<int>(), 12);  // element 12 of the flat data
  EXPECT_EQ(d.samples[4][0][2][3].item<int>(), 59);
  EXPECT_EQ(d.labels.scalar_type(), torch::kInt64);
  EXPECT_EQ(d.labels[3].item<int64_t>(), 3);
  EXPECT_EQ(d.num_classes, 5);
}

TEST(Idx, SingleFileFindsSiblingLabels) {
  TempDir dir("idx_file");
  write_gzip(dir / "t10k-images-idx3-ubyte.gz", idx_images(4, 2, 2));
  write_bytes(dir / "t10k-labels-idx1-ubyte.gz", idx_labels(4));  // raw bytes despite the name: gzread copes
  onestep::Dataset d = onestep::load_idx_file(dir / "t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(d.size(), 4);
  ASSERT_TRUE(d.labels.defined());
}

TEST(Idx, CorruptFilesNameTheFileAndTheProblem) {
  TempDir dir("idx_bad");
  const auto path = dir / "x-images-idx3-ubyte";
  std::string good = idx_images(3, 2, 2);

  write_bytes(path, good.substr(0, good.size() - 1));
  EXPECT_THAT(error_of([&] { onestep::read_idx_images(path); }), HasSubstr("truncated"));
  EXPECT_THAT(error_of([&] { onestep::read_idx_images(path); }), HasSubstr(path.string()));

  write_bytes(path, good + "xx");
  EXPECT_THAT(error_of([&] { onestep::read_idx_images(path); }), HasSubstr("trailing"));

  std::string bad_magic = good;
  bad_magic[0] = 1;
  write_bytes(path, bad_magic);
  EXPECT_THAT(error_of([&] { onestep::read_idx_images(path); }), HasSubstr("magic"));

  write_bytes(path, idx_labels(3));
  EXPECT_THAT(error_of([&] { onestep::read_idx_images(path); }), HasSubstr("dimensions"));

  write_bytes(path, "ab");
  EXPECT_THAT(error_of([&] { onestep::read_idx_images(path); }), HasSubstr("too short"));

  // A gzip stream cut in the middle.
  const auto gz = dir / "cut.gz";
  write_gzip(gz, idx_images(50, 8, 8));
  std::string z = onestep::testing::read_bytes(gz);
  write_bytes(gz, z.substr(0, z.size() / 2));
  EXPECT_THAT(error_of([&] { onestep::read_idx_images(gz); }), HasSubstr(gz.string()));

  EXPECT_THAT(error_of([&] { onestep::read_idx_images(dir / "missing"); }), HasSubstr("does not exist"));
}

TEST(Idx, ImageAndLabelCountsMustAgree) {
  TempDir dir("idx_mismatch");
  write_bytes(dir / "train-images-idx3-ubyte", idx_images(5, 2, 2));
  write_bytes(dir / "train-labels-idx1-ubyte", idx_labels(4));
  EXPECT_THAT(error_of([&] { onestep::load_idx_directory(dir.path, "train", "mnist"); }),
              HasSubstr("5 images but 4 labels"));
  EXPECT_THAT(error_of([&] { onestep::load_idx_directory(dir.path, "test", "mnist"); }), HasSubstr("t10k"));
}
