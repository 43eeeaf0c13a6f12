#include "io/tensorboard.h"

#include "core/error.h"
#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#ifndef ONESTEP_WITH_TENSORBOARD
#define ONESTEP_WITH_TENSORBOARD 0
#endif
#if ONESTEP_WITH_TENSORBOARD
#include <isa-l/crc.h>

#include "tensorboard_event.pb.h"
#endif

namespace onestep {

namespace fs = std::filesystem;

bool tensorboard_available() { return ONESTEP_WITH_TENSORBOARD != 0; }

uint32_t crc32c(const std::string& bytes) {
#if ONESTEP_WITH_TENSORBOARD
  // ISA-L's crc32_iscsi is CRC-32C without the final inversion; the standard value starts from ~0 and ends
  // inverted (RFC 3720 B.4).
  auto* data = reinterpret_cast<unsigned char*>(const_cast<char*>(bytes.data()));
  return crc32_iscsi(data, static_cast<int>(bytes.size()), 0xFFFFFFFFu) ^ 0xFFFFFFFFu;
#else
  (void)bytes;
  fail("crc32c: this build has no ISA-L (TensorBoard support is off, see CMakeLists.txt)");
#endif
}

uint32_t masked_crc32c(const std::string& bytes) {
  const uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;  // tensorflow/core/lib/hash/crc32c.h: Mask
}

namespace {

std::string little_endian(uint64_t value, int bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int i = 0; i < bytes; ++i) out[static_cast<size_t>(i)] = static_cast<char>((value >> (8 * i)) & 0xFF);
  return out;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool is_quality_metric(const std::string& key) {
  return key.rfind("fd_", 0) == 0 || key.rfind("fid_", 0) == 0 || key.rfind("swd_", 0) == 0;
}

}  // namespace

std::string frame_record(const std::string& data) {
  const std::string length = little_endian(data.size(), 8);
  return length + little_endian(masked_crc32c(length), 4) + data + little_endian(masked_crc32c(data), 4);
}

std::string tensorboard_tag(const std::string& key) {
  if (key == "step" || key == "time" || key == "wall_s" || key == "streak" || key == "nonfinite_loss") return "";
  if (key == "loss" || key == "lr" || key == "grad_norm" || key == "images_per_s" || key == "images_seen")
    return "train/" + key;
  if (key == "N") return "curriculum/N";             // iCT's discretization steps N(k)
  if (key == "stage") return "curriculum/ect_stage";  // ECT's dt schedule stage
  if (is_quality_metric(key)) return "eval/" + key;
  return "stats/" + key;
}

#if ONESTEP_WITH_TENSORBOARD

std::string file_version_event(double wall_time) {
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_file_version("brain.Event:2");
  return event.SerializeAsString();
}

std::string scalars_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& values) {
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  auto* summary = event.mutable_summary();
  for (const auto& [tag, value] : values) {
    auto* v = summary->add_value();
    v->set_tag(tag);
    v->set_simple_value(value);
  }
  return event.SerializeAsString();
}

std::string image_event(double wall_time, int64_t step, const std::string& tag, const std::string& png) {
  // Size and channels from the IHDR chunk: 8-byte signature, length, "IHDR", width, height (big-endian), bit
  // depth, colour type (0 gray, 2 RGB, 4 gray + alpha, 6 RGBA).
  require(png.size() >= 26 && png.compare(1, 3, "PNG") == 0 && png.compare(12, 4, "IHDR") == 0,
          "TensorBoard image '", tag, "': not a PNG");
  auto be32 = [&](size_t at) {
    return static_cast<int32_t>((uint32_t(uint8_t(png[at])) << 24) | (uint32_t(uint8_t(png[at + 1])) << 16) |
                                (uint32_t(uint8_t(png[at + 2])) << 8) | uint32_t(uint8_t(png[at + 3])));
  };
  const int colour_type = static_cast<uint8_t>(png[25]);
  const int channels = colour_type == 0 ? 1 : colour_type == 4 ? 2 : colour_type == 6 ? 4 : 3;
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  auto* v = event.mutable_summary()->add_value();
  v->set_tag(tag);
  auto* image = v->mutable_image();
  image->set_height(be32(20));
  image->set_width(be32(16));
  image->set_colorspace(channels);
  image->set_encoded_image_string(png);
  return event.SerializeAsString();
}

std::string session_start_event(double wall_time, int64_t step) {
  tensorboard::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  event.mutable_session_log()->set_status(tensorboard::SessionLog::START);
  return event.SerializeAsString();
}

EventWriter::EventWriter(const fs::path& dir) {
  static std::atomic<int> counter{0};
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  char name[400];
  std::snprintf(name, sizeof name, "events.out.tfevents.%010lld.%s.%d.%d", static_cast<long long>(unix_now()), host,
                static_cast<int>(::getpid()), counter++);
  fs::create_directories(dir);
  path_ = dir / name;
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  require(fd_ >= 0, "cannot create TensorBoard event file '", path_.string(), "': ", std::strerror(errno));
  write_event(file_version_event(unix_now()));
}

EventWriter::~EventWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventWriter::write_event(const std::string& serialized_event) {
  // One write per record, as metrics.jsonl per line: a killed run keeps what it logged, and a record that does
  // not fit (disk full) is cut back rather than left torn.
  append_whole_or_fail(fd_, frame_record(serialized_event), path_, "TensorBoard event file");
}

void EventWriter::write_scalar(int64_t step, const std::string& tag, double value) {
  write_event(scalars_event(unix_now(), step, {{tag, static_cast<float>(value)}}));
}

void EventWriter::write_metrics(const Json& record) {
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) return;
  if (record.value("nonfinite_loss", false)) return;
  std::vector<std::pair<std::string, float>> values;
  for (const auto& [key, value] : record.items()) {
    const std::string tag = tensorboard_tag(key);
    if (!tag.empty() && value.is_number()) values.emplace_back(tag, value.get<float>());
  }
  if (values.empty()) return;
  const double wall_time = record.contains("time") && record["time"].is_number() ? record["time"].get<double>()
                                                                                  : unix_now();
  write_event(scalars_event(wall_time, record["step"].get<int64_t>(), values));
}

void EventWriter::write_png(int64_t step, const std::string& tag, const std::string& png) {
  write_event(image_event(unix_now(), step, tag, png));
}

void EventWriter::write_session_start(int64_t step) { write_event(session_start_event(unix_now(), step)); }

#else  // built without protobuf/ISA-L: no event files

namespace {
[[noreturn]] void no_tensorboard() { fail("this build has no TensorBoard support (protobuf/ISA-L not found)"); }
}  // namespace
std::string file_version_event(double) { no_tensorboard(); }
std::string scalars_event(double, int64_t, const std::vector<std::pair<std::string, float>>&) { no_tensorboard(); }
std::string image_event(double, int64_t, const std::string&, const std::string&) { no_tensorboard(); }
std::string session_start_event(double, int64_t) { no_tensorboard(); }
EventWriter::EventWriter(const fs::path&) {}
EventWriter::~EventWriter() = default;
void EventWriter::write_event(const std::string&) {}
void EventWriter::write_scalar(int64_t, const std::string&, double) {}
void EventWriter::write_metrics(const Json&) {}
void EventWriter::write_png(int64_t, const std::string&, const std::string&) {}
void EventWriter::write_session_start(int64_t) {}

#endif

}  // namespace onestep
