#pragma once
// Progress of long work: a redrawn bar with rate, ETA and named values on a terminal; plain periodic lines
// (for logs and CI) otherwise.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

class Progress {
 public:
  // `unit` names what is counted ("it", "img"); `plain_every_s` spaces the plain lines.
  Progress(std::string label, int64_t total, std::string unit = "it", double plain_every_s = 10.0,
           std::FILE* stream = stderr);
  // Sets the position (absolute) and the values shown beside it ("loss", 0.0123).
  void update(int64_t done, const std::vector<std::pair<std::string, double>>& values = {});
  void finish();
  double rate() const;  // units per second since start

  static bool stream_is_terminal(std::FILE* stream);

 private:
  std::string render(bool with_bar) const;
  std::string label_, unit_;
  int64_t total_, done_ = 0, start_done_ = -1;
  std::vector<std::pair<std::string, double>> values_;
  std::FILE* stream_;
  bool terminal_;
  double plain_every_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool finished_ = false;
};

std::string format_duration(double seconds);

}  // namespace onestep
