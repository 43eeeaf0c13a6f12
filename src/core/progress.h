#pragma once
// Progress of long work: a redrawn bar with rate, ETA and named values on a terminal; plain periodic lines
// (for logs and CI) otherwise. The closing line states the measured rate and the elapsed time.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

class Progress {
 public:
  // `unit` names what is counted ("it", "img"); `plain_every_s` spaces the plain lines. The rate is counted
  // from construction and position 0.
  Progress(std::string label, int64_t total, std::string unit = "it", double plain_every_s = 10.0,
           std::FILE* stream = stderr);
  // A resumed run: the rate counts from `done` and from now, not from 0.
  void resume_at(int64_t done);
  // Sets the position (absolute) and the values shown beside it ("loss", 0.0123).
  void update(int64_t done, const std::vector<std::pair<std::string, double>>& values = {});
  // Prints the closing line: position, measured rate and elapsed time.
  void finish();
  double rate() const;            // units per second since the start (or resume_at)
  double elapsed_seconds() const;

  static bool stream_is_terminal(std::FILE* stream);

 private:
  std::string render(bool with_bar) const;
  std::string label_, unit_;
  int64_t total_, done_ = 0, start_done_ = 0;
  std::vector<std::pair<std::string, double>> values_;
  std::FILE* stream_;
  bool terminal_;
  double plain_every_s_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool finished_ = false;
};

// "--:--" for unknown, "MM:SS" below an hour, "H:MM:SS" above.
std::string format_duration(double seconds);
// Elapsed time of finished work: "0.42 s" below a minute, else as format_duration.
std::string format_elapsed(double seconds);
// A rate with three significant digits and no exponent: "0.0123", "4.56", "789", "12345".
std::string format_rate(double per_second);

}  // namespace onestep
