// TensorBoard event files: CRC-32C and its mask, TFRecord framing, the Event encoding, and what the trainer's
// writer puts in a file. Expected bytes come from outside onestep: the CRC catalogue's check value and RFC 3720's
// test vectors, and TensorBoard 2.21's own Python code (tensorboard.compat.tensorflow_stub masked_crc32c and the
// event_pb2/summary_pb2 classes), whose outputs are pasted below.
#include "io/tensorboard.h"

#include "core/error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/temp_dir.h"
#include "io/file_size_limit.h"

#include <map>
#include <string>
#include <vector>

using onestep::Json;

namespace {

std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string to_hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// A 5 x 7 RGBA PNG's signature and IHDR chunk: all the writer reads of an image.
const std::string kPngHeader = from_hex("89504e470d0a1a0a0000000d4948445200000005000000070806000000");

#define SKIP_WITHOUT_TENSORBOARD()                                                  \
  if (!onestep::tensorboard_available()) GTEST_SKIP() << "built without protobuf/ISA-L"

}  // namespace

TEST(TensorBoard, Crc32cMatchesPublishedValues) {
  SKIP_WITHOUT_TENSORBOARD();
  EXPECT_EQ(onestep::crc32c("123456789"), 0xE3069283u);  // CRC catalogue, CRC-32/ISCSI check value
  EXPECT_EQ(onestep::crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(onestep::crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending += static_cast<char>(i);
  EXPECT_EQ(onestep::crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(onestep::crc32c(""), 0u);
}

TEST(TensorBoard, MaskedCrcAndRecordFramingMatchTensorBoard) {
  SKIP_WITHOUT_TENSORBOARD();
  // tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c
  EXPECT_EQ(onestep::masked_crc32c("123456789"), 0xC78AB0E5u);
  EXPECT_EQ(onestep::masked_crc32c(std::string(32, '\0')), 0x0FD7FFFAu);
  // length 5 (8 bytes LE), masked CRC of the length, "hello", masked CRC of "hello"
  EXPECT_EQ(to_hex(onestep::frame_record("hello")), "0500000000000000eab2043e68656c6c6fbb1f1c19");
}

TEST(TensorBoard, EventEncodingMatchesTensorBoardsSchema) {
  // The field numbers of src/io/tensorboard_event.proto against bytes serialized by TensorBoard's event_pb2.
  SKIP_WITHOUT_TENSORBOARD();
  EXPECT_EQ(to_hex(onestep::scalars_event(1.5, 7, {{"train/loss", 0.25f}})),
            "09000000000000f83f10072a130a110a0a747261696e2f6c6f7373150000803e");
  EXPECT_EQ(to_hex(onestep::image_event(2.0, 3, "samples", kPngHeader)),
            "09000000000000004010032a320a300a0773616d706c65732225080710051804221d89504e470d0a1a0a0000000d49484452000000"
            "05000000070806000000");
  EXPECT_EQ(to_hex(onestep::session_start_event(2.0, 40)), "09000000000000004010283a020801");
  EXPECT_EQ(to_hex(onestep::file_version_event(2.0)), "0900000000000000401a0d627261696e2e4576656e743a32");
  EXPECT_THROW(onestep::image_event(2.0, 3, "samples", "GIF89a not a png at all"), onestep::Error);
}

namespace {

// Splits a file into records, checking each length and data CRC.
std::vector<std::string> read_records(const std::filesystem::path& path) {
  const std::string bytes = onestep::testing::read_bytes(path);
  std::vector<std::string> records;
  size_t at = 0;
  auto u32 = [&](size_t i) {
    uint32_t v = 0;
    for (int b = 3; b >= 0; --b) v = (v << 8) | static_cast<unsigned char>(bytes[i + b]);
    return v;
  };
  while (at + 12 <= bytes.size()) {
    uint64_t length = 0;
    for (int b = 7; b >= 0; --b) length = (length << 8) | static_cast<unsigned char>(bytes[at + b]);
    EXPECT_EQ(u32(at + 8), onestep::masked_crc32c(bytes.substr(at, 8)));
    if (at + 12 + length + 4 > bytes.size()) break;
    const std::string data = bytes.substr(at + 12, length);
    EXPECT_EQ(u32(at + 12 + length), onestep::masked_crc32c(data));
    records.push_back(data);
    at += 12 + length + 4;
  }
  EXPECT_EQ(at, bytes.size()) << "trailing bytes";
  return records;
}

}  // namespace

TEST(TensorBoard, WriterPutsMetricsImagesAndSessionStartsInOneFilePerSession) {
  SKIP_WITHOUT_TENSORBOARD();
  onestep::testing::TempDir tmp("tensorboard_writer");
  std::filesystem::path path;
  {
    onestep::EventWriter writer(tmp.path);
    path = writer.path();
    EXPECT_THAT(path.filename().string(), ::testing::StartsWith("events.out.tfevents."));
    writer.write_metrics(Json{{"step", 10}, {"loss", 0.5}, {"lr", 1e-4}, {"N", 11}, {"fd_fmnist_1step", 42.0},
                              {"mean_weight", 2.0}, {"wall_s", 3.0}, {"time", 1700000000.25}});
    writer.write_metrics(Json{{"step", 11}, {"nonfinite_loss", true}, {"streak", 1}});  // skipped
    writer.write_png(10, "samples", kPngHeader);
    writer.write_session_start(8);
  }
  onestep::EventWriter second(tmp.path);
  EXPECT_NE(second.path(), path);

  const auto records = read_records(path);
  ASSERT_EQ(records.size(), 4u);
  // Past the wall time (field 1: tag byte + 8 bytes), the records are what TensorBoard's event_pb2 serializes.
  EXPECT_EQ(to_hex(records[0]).substr(18), "1a0d627261696e2e4576656e743a32");
  // The metrics line, keys in JSON order, at its logged time: every byte as event_pb2 makes it.
  EXPECT_EQ(to_hex(records[1]),
            "0900001040fc54d941100a2a700a130a0c637572726963756c756d2f4e15000030410a1b0a146576616c2f66645f666d6e6973"
            "745f317374657015000028420a110a0a747261696e2f6c6f7373150000003f0a0f0a08747261696e2f6c721517b7d1380a18"
            "0a1173746174732f6d65616e5f7765696768741500000040");
  EXPECT_EQ(to_hex(records[2]).substr(18), to_hex(onestep::image_event(2.0, 10, "samples", kPngHeader)).substr(18));
  EXPECT_EQ(to_hex(records[3]).substr(18), "10083a020801");  // step 8, session_log START
}

TEST(TensorBoard, TagsGroupTheMetricsLine) {
  EXPECT_EQ(onestep::tensorboard_tag("loss"), "train/loss");
  EXPECT_EQ(onestep::tensorboard_tag("images_per_s"), "train/images_per_s");
  EXPECT_EQ(onestep::tensorboard_tag("stage"), "curriculum/ect_stage");
  EXPECT_EQ(onestep::tensorboard_tag("swd_2step"), "eval/swd_2step");
  EXPECT_EQ(onestep::tensorboard_tag("fid_1step"), "eval/fid_1step");
  EXPECT_EQ(onestep::tensorboard_tag("frac_r_zero"), "stats/frac_r_zero");
  EXPECT_EQ(onestep::tensorboard_tag("step"), "");
  EXPECT_EQ(onestep::tensorboard_tag("wall_s"), "");
}

// Disk full while logging: the record that does not fit is cut back (the file stays a valid TFRecord stream) and
// the error asks "disk full?", as the checkpoint path does.
TEST(TensorBoard, DiskFullCutsTheRecordBackAndSaysDiskFull) {
  SKIP_WITHOUT_TENSORBOARD();
  onestep::testing::TempDir tmp("tensorboard_full");
  onestep::EventWriter writer(tmp.path);
  writer.write_scalar(1, "train/loss", 0.5);
  const auto size = std::filesystem::file_size(writer.path());
  std::string error;
  {
    onestep::testing::FileSizeLimit full(size + 10);
    try {
      writer.write_scalar(2, "train/loss", 0.25);
    } catch (const onestep::Error& e) {
      error = e.what();
    }
  }
  EXPECT_EQ(error, "cannot write TensorBoard event file '" + writer.path().string() + "': File too large (disk full?)");
  EXPECT_EQ(std::filesystem::file_size(writer.path()), size);
  writer.write_scalar(3, "train/loss", 0.125);
  EXPECT_EQ(read_records(writer.path()).size(), 3u);
}
