#include "core/error.h"
#include "io/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using ::testing::HasSubstr;

namespace {

std::string le64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}
// A file from a header text and data bytes, the header length computed honestly.
std::string file_of(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}
std::string parse_error(const std::string& bytes) {
  try {
    onestep::parse_safetensors(bytes, "bad.safetensors");
  } catch (const onestep::Error& e) {
    return e.what();
  }
  return "(no error)";
}
std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("onestep_st_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST(Safetensors, RoundTripsEveryFloatDtypeAndMetadata) {
  const auto path = temp_path("rt.safetensors");
  auto f32 = torch::randn({3, 4});
  auto f16 = torch::randn({5}).to(torch::kFloat16);
  auto bf16 = torch::randn({2, 2, 2}).to(torch::kBFloat16);
  auto i64 = torch::arange(7, torch::kInt64);
  auto flag = torch::tensor({true, false, true});
  auto scalar = torch::tensor(2.5f);
  auto empty = torch::zeros({0, 3});
  auto strided = torch::randn({4, 6}).t();  // non-contiguous input is written contiguous
  onestep::save_safetensors(path,
                            {{"w", f32}, {"h", f16}, {"b", bf16}, {"i", i64}, {"flag", flag}, {"s", scalar},
                             {"e", empty}, {"t", strided}},
                            {{"note", "hello"}, {"json", "{\"a\":1}"}});
  auto content = onestep::load_safetensors(path);
  ASSERT_EQ(content.tensors.size(), 8u);
  EXPECT_EQ(content.tensors[0].first, "w");  // file order
  EXPECT_TRUE(torch::equal(*content.find("w"), f32));
  EXPECT_EQ(content.find("h")->scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(*content.find("h"), f16));
  EXPECT_EQ(content.find("b")->scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(*content.find("b"), bf16));
  EXPECT_TRUE(torch::equal(*content.find("i"), i64));
  EXPECT_TRUE(torch::equal(*content.find("flag"), flag));
  EXPECT_EQ(content.find("s")->dim(), 0);
  EXPECT_EQ(content.find("e")->sizes(), empty.sizes());
  EXPECT_TRUE(torch::equal(*content.find("t"), strided));
  EXPECT_EQ(content.find("missing"), nullptr);
  EXPECT_EQ(content.metadata.at("note"), "hello");
  EXPECT_EQ(content.metadata.at("json"), "{\"a\":1}");
  // The header is padded so that the data starts 8-byte aligned, like the reference writer.
  std::ifstream in(path, std::ios::binary);
  char len[8];
  in.read(len, 8);
  EXPECT_EQ(static_cast<unsigned char>(len[0]) % 8, 0);
  std::filesystem::remove(path);
}

TEST(Safetensors, ReadsAHandWrittenFile) {
  // Two float32 values 1.0 and -2.0, little-endian.
  std::string data("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8);
  auto content = onestep::parse_safetensors(
      file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"k":"v"}})", data), "hand");
  EXPECT_TRUE(torch::equal(*content.find("a"), torch::tensor({1.0f, -2.0f})));
  EXPECT_EQ(content.metadata.at("k"), "v");
}

TEST(Safetensors, WriterRejectsDuplicateNamesAndUnsupportedDtypes) {
  const auto path = temp_path("dup.safetensors");
  EXPECT_THROW(onestep::save_safetensors(path, {{"a", torch::ones({1})}, {"a", torch::ones({1})}}), onestep::Error);
  EXPECT_THROW(onestep::save_safetensors(path, {{"c", torch::ones({1}, torch::kComplexFloat)}}), onestep::Error);
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Safetensors, MissingFileNamesThePath) {
  try {
    onestep::load_safetensors("/nonexistent/x.safetensors");
    FAIL();
  } catch (const onestep::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/x.safetensors"));
  }
}

// The reader is a security boundary: each malformed header is rejected with a message naming the problem.
TEST(Safetensors, RejectsMalformedFiles) {
  const std::string four(4, '\0');
  const std::string eight(8, '\0');
  const std::string ok_a = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";

  EXPECT_THAT(parse_error("abc"), HasSubstr("shorter than the 8-byte header length"));
  EXPECT_THAT(parse_error(le64(1000) + "{}"), HasSubstr("runs past the end of the file"));
  EXPECT_THAT(parse_error(le64(~uint64_t{0}) + "{}"), HasSubstr("exceeds the limit"));
  EXPECT_THAT(parse_error(file_of("{not json", "")), HasSubstr("not valid JSON"));
  EXPECT_THAT(parse_error(file_of("[1,2]", "")), HasSubstr("must be a JSON object"));
  EXPECT_THAT(parse_error(file_of("{" + ok_a + "," + ok_a + "}", four)), HasSubstr("appears twice"));
  // Offsets outside the data.
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", four)),
              HasSubstr("run past the end of the data"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four)),
              HasSubstr("reversed"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", four)),
              HasSubstr("non-negative integer"));
  // Overlapping and non-contiguous tensors.
  EXPECT_THAT(parse_error(file_of("{" + ok_a + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", four)),
              HasSubstr("overlaps"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight)),
              HasSubstr("gap before tensor 'a'"));
  EXPECT_THAT(parse_error(file_of("{" + ok_a + "}", eight)), HasSubstr("trailing bytes"));
  // Shape disagreeing with the byte count; absurd and negative sizes, without overflow.
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four)),
              HasSubstr("needs"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F16","shape":[1],"data_offsets":[0,4]}})", four)),
              HasSubstr("needs 2 bytes but data_offsets give 4"));
  EXPECT_THAT(
      parse_error(file_of(
          R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,4]}})", four)),
      HasSubstr("needs more bytes than the file holds"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,4]}})",
                                  four)),
              HasSubstr("absurd"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four)),
              HasSubstr("non-negative integer"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", four)),
              HasSubstr("non-negative integer"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],)"
                                  R"("data_offsets":[0,4]}})",
                                  four)),
              HasSubstr("dimensions"));
  // Unknown dtype, missing or extra fields.
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F8","shape":[4],"data_offsets":[0,4]}})", four)),
              HasSubstr("unknown dtype 'F8'"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", four)), HasSubstr("'dtype'"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", four)),
              HasSubstr("data_offsets"));
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", four)),
              HasSubstr("unexpected field 'x'"));
  EXPECT_THAT(parse_error(file_of(R"({"a":3})", "")), HasSubstr("entry must be an object"));
  // Metadata must map strings to strings.
  EXPECT_THAT(parse_error(file_of(R"({"__metadata__":{"k":1}})", "")), HasSubstr("not a string"));
  EXPECT_THAT(parse_error(file_of(R"({"__metadata__":[1]})", "")), HasSubstr("__metadata__ must be an object"));
  // BOOL bytes other than 0/1.
  EXPECT_THAT(parse_error(file_of(R"({"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}})", "\x07")),
              HasSubstr("BOOL"));
  // Messages name the source.
  EXPECT_THAT(parse_error(file_of("[]", "")), HasSubstr("bad.safetensors"));
}

TEST(Safetensors, TruncatedFileIsRejected) {
  const auto path = temp_path("trunc.safetensors");
  onestep::save_safetensors(path, {{"w", torch::randn({16})}});
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t cut : {bytes.size() - 1, bytes.size() - 40, size_t{12}, size_t{7}})
    EXPECT_THROW(onestep::parse_safetensors(bytes.substr(0, cut), "trunc"), onestep::Error) << cut;
  std::filesystem::remove(path);
}

TEST(Safetensors, MetadataAloneIsReadFromTheHeader) {
  const auto path = temp_path("meta.safetensors");
  onestep::save_safetensors(path, {{"w", torch::ones({2, 3})}}, {{"format", "pt"}, {"onestep_config", "{\"a\": 1}"}});
  const auto metadata = onestep::read_safetensors_metadata(path);
  ASSERT_EQ(metadata.size(), 2u);
  EXPECT_EQ(metadata.at("format"), "pt");
  EXPECT_EQ(metadata.at("onestep_config"), "{\"a\": 1}");
  // Without metadata: an empty map. A header that runs past the end, or is not JSON: one line naming the file.
  onestep::save_safetensors(path, {{"w", torch::ones({2})}});
  EXPECT_TRUE(onestep::read_safetensors_metadata(path).empty());
  const auto error_of = [&](const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
    try {
      onestep::read_safetensors_metadata(path);
    } catch (const onestep::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_THAT(error_of(le64(400) + "{}"), HasSubstr("runs past the end of the file"));
  EXPECT_THAT(error_of(file_of("{not json", "")), HasSubstr("header is not valid JSON"));
  EXPECT_THAT(error_of(file_of("{\"__metadata__\": {\"k\": 3}}", "")), HasSubstr("is not a string"));
  EXPECT_THAT(error_of("abc"), HasSubstr("shorter than the 8-byte header length"));
  std::filesystem::remove(path);
  EXPECT_THAT(error_of(""), HasSubstr("shorter than the 8-byte header length"));
  std::filesystem::remove(path);
}
