// TensorBoard event files: CRC-32C and its mask, TFRecord framing, the Event encoding, and what the trainer's
// writer puts in a file. Expected bytes come from outside onestep: the CRC catalogue's check value and RFC 3720's
// test vectors, and TensorBoard 2.21's own Python code (tensorboard.compat.tensorflow_stub masked_crc32c and the
// event_pb2/summary_pb2 classes), whose outputs are pasted below.
#include "io/tensorboard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/temp_dir.h"

#include <map>
#include <string>
#include <vector>

#if ONESTEP_WITH_TENSORBOARD
#include "tensorboard_event.pb.h"
#endif

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

#if ONESTEP_WITH_TENSORBOARD
TEST(TensorBoard, EventEncodingMatchesTensorBoardsSchema) {
  // The field numbers of src/io/tensorboard_event.proto against bytes serialized by TensorBoard's event_pb2.
  namespace tb = onestep::tensorboard;
  tb::Event scalar;
  scalar.set_wall_time(1.5);
  scalar.set_step(7);
  auto* v = scalar.mutable_summary()->add_value();
  v->set_tag("train/loss");
  v->set_simple_value(0.25f);
  EXPECT_EQ(to_hex(scalar.SerializeAsString()), "09000000000000f83f10072a130a110a0a747261696e2f6c6f7373150000803e");
  tb::Event image;
  image.set_wall_time(2.0);
  image.set_step(3);
  auto* iv = image.mutable_summary()->add_value();
  iv->set_tag("samples");
  iv->mutable_image()->set_height(2);
  iv->mutable_image()->set_width(3);
  iv->mutable_image()->set_colorspace(1);
  iv->mutable_image()->set_encoded_image_string("PNGDATA");
  EXPECT_EQ(to_hex(image.SerializeAsString()),
            "09000000000000004010032a1c0a1a0a0773616d706c6573220f0802100318012207504e4744415441");
  tb::Event start;
  start.set_wall_time(2.0);
  start.set_step(40);
  start.mutable_session_log()->set_status(tb::SessionLog::START);
  EXPECT_EQ(to_hex(start.SerializeAsString()), "09000000000000004010283a020801");
  tb::Event version;
  version.set_wall_time(2.0);
  version.set_file_version("brain.Event:2");
  EXPECT_EQ(to_hex(version.SerializeAsString()), "0900000000000000401a0d627261696e2e4576656e743a32");
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
  while (at < bytes.size()) {
    EXPECT_LE(at + 12, bytes.size());
    uint64_t length = 0;
    for (int b = 7; b >= 0; --b) length = (length << 8) | static_cast<unsigned char>(bytes[at + b]);
    EXPECT_EQ(u32(at + 8), onestep::masked_crc32c(bytes.substr(at, 8)));
    const std::string data = bytes.substr(at + 12, length);
    EXPECT_EQ(u32(at + 12 + length), onestep::masked_crc32c(data));
    records.push_back(data);
    at += 12 + length + 4;
  }
  return records;
}

}  // namespace

TEST(TensorBoard, WriterPutsMetricsImagesAndSessionStartsInOneFilePerSession) {
  onestep::testing::TempDir tmp("tensorboard_writer");
  const std::string png = from_hex("89504e470d0a1a0a0000000d4948445200000005000000070806000000");  // 5 x 7 RGBA header
  std::filesystem::path path;
  {
    onestep::EventWriter writer(tmp.path);
    path = writer.path();
    EXPECT_THAT(path.filename().string(), ::testing::StartsWith("events.out.tfevents."));
    writer.write_metrics(Json{{"step", 10}, {"loss", 0.5}, {"lr", 1e-4}, {"N", 11}, {"fd_fmnist_1step", 42.0},
                              {"mean_weight", 2.0}, {"wall_s", 3.0}, {"time", 1700000000.25}});
    writer.write_metrics(Json{{"step", 11}, {"nonfinite_loss", true}, {"streak", 1}});  // skipped
    writer.write_png(10, "samples", png);
    writer.write_session_start(8);
  }
  onestep::EventWriter second(tmp.path);
  EXPECT_NE(second.path(), path);

  const auto records = read_records(path);
  ASSERT_EQ(records.size(), 4u);
  onestep::tensorboard::Event e;
  ASSERT_TRUE(e.ParseFromString(records[0]));
  EXPECT_EQ(e.file_version(), "brain.Event:2");
  ASSERT_TRUE(e.ParseFromString(records[1]));
  EXPECT_EQ(e.step(), 10);
  EXPECT_DOUBLE_EQ(e.wall_time(), 1700000000.25);
  std::map<std::string, float> scalars;
  for (const auto& v : e.summary().value()) scalars[v.tag()] = v.simple_value();
  EXPECT_EQ(scalars, (std::map<std::string, float>{{"train/loss", 0.5f},
                                                   {"train/lr", 1e-4f},
                                                   {"curriculum/N", 11.0f},
                                                   {"eval/fd_fmnist_1step", 42.0f},
                                                   {"stats/mean_weight", 2.0f}}));
  ASSERT_TRUE(e.ParseFromString(records[2]));
  ASSERT_EQ(e.summary().value_size(), 1);
  const auto& image = e.summary().value(0).image();
  EXPECT_EQ(image.width(), 5);
  EXPECT_EQ(image.height(), 7);
  EXPECT_EQ(image.colorspace(), 4);
  EXPECT_EQ(image.encoded_image_string(), png);
  ASSERT_TRUE(e.ParseFromString(records[3]));
  EXPECT_EQ(e.session_log().status(), onestep::tensorboard::SessionLog::START);
  EXPECT_EQ(e.step(), 8);
}
#endif

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
