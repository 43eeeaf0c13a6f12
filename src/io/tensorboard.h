#pragma once
// TensorBoard event files in a run directory: `tensorboard --logdir runs` shows each run's scalars (loss, learning
// rate, curriculum, logged statistics, FD/FID/SWD, images/s) and sample grids. The records are Event protocol
// buffers (src/io/tensorboard_event.proto, encoded by libprotobuf) framed as TFRecords: length, masked CRC32C of
// the length, data, masked CRC32C of the data (CRC32C from ISA-L).
#include "config/config.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

// False when the build found no protobuf/ISA-L (see CMakeLists.txt): EventWriter then writes nothing and the
// functions below fail.
bool tensorboard_available();

// CRC-32C (Castagnoli) of `bytes`, and the masked form TFRecord stores: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t crc32c(const std::string& bytes);
uint32_t masked_crc32c(const std::string& bytes);
// One TFRecord: uint64 length (little-endian), masked CRC32C of those 8 bytes, the data, masked CRC32C of the data.
std::string frame_record(const std::string& data);

// Serialized Event protocol buffers, as the writer frames them: the file-version record, scalars, a PNG image
// (size and channels from its header) and a session start.
std::string file_version_event(double wall_time);
std::string scalars_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, float>>& values);
std::string image_event(double wall_time, int64_t step, const std::string& tag, const std::string& png_bytes);
std::string session_start_event(double wall_time, int64_t step);

class EventWriter {
 public:
  // Opens a new file dir/events.out.tfevents.<unix seconds>.<host>.<pid>.<n> (one per training session) and
  // writes its file-version record.
  explicit EventWriter(const std::filesystem::path& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  // Every number of a metrics line as a scalar at its "step", tagged by what it is: train/loss, train/lr,
  // train/images_per_s, curriculum/N, curriculum/ect_stage, eval/fd_fmnist_1step, stats/<key>, ...
  void write_metrics(const Json& record);
  void write_scalar(int64_t step, const std::string& tag, double value);
  // A PNG (grayscale or RGB, as the file's header says) under `tag`.
  void write_png(int64_t step, const std::string& tag, const std::string& png_bytes);
  // A resumed run logs again from `step` on: TensorBoard discards the events of steps >= `step` written before.
  void write_session_start(int64_t step);

  const std::filesystem::path& path() const { return path_; }

 private:
  void write_event(const std::string& serialized_event);
  std::filesystem::path path_;
  int fd_ = -1;
};

// The tag a metrics-line key is shown under; empty for keys that are not plotted (step, time, wall_s, ...).
std::string tensorboard_tag(const std::string& key);

}  // namespace onestep
