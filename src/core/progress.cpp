#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <sstream>

namespace onestep {

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

bool Progress::stream_is_terminal(std::FILE* stream) { return ::isatty(::fileno(stream)) == 1; }

Progress::Progress(std::string label, int64_t total, std::string unit, double plain_every_s, std::FILE* stream)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      stream_(stream),
      terminal_(stream_is_terminal(stream)),
      plain_every_s_(plain_every_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

double Progress::rate() const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const int64_t counted = done_ - std::max<int64_t>(start_done_, 0);
  return elapsed > 0 ? counted / elapsed : 0.0;
}

std::string Progress::render(bool with_bar) const {
  std::ostringstream out;
  const double fraction = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 0.0;
  out << label_ << " ";
  if (with_bar) {
    const int width = 24, filled = static_cast<int>(fraction * width);
    out << "[" << std::string(filled, '#') << std::string(width - filled, '.') << "] ";
  }
  out << done_ << "/" << total_ << " " << unit_;
  const double r = rate();
  char buf[64];
  std::snprintf(buf, sizeof buf, " %.3g %s/s", r, unit_.c_str());
  out << buf;
  const double eta = r > 0 ? (total_ - done_) / r : NAN;
  out << " eta " << format_duration(eta);
  for (const auto& [name, value] : values_) {
    std::snprintf(buf, sizeof buf, " %s %.4g", name.c_str(), value);
    out << buf;
  }
  return out.str();
}

void Progress::update(int64_t done, const std::vector<std::pair<std::string, double>>& values) {
  if (start_done_ < 0) {
    start_done_ = done;  // a resumed run counts its rate from where it resumed
    start_ = std::chrono::steady_clock::now();
  }
  done_ = done;
  if (!values.empty()) values_ = values;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  if (terminal_) {
    if (since < 0.1 && done_ < total_) return;
    std::fprintf(stream_, "\r\033[K%s", render(true).c_str());
    std::fflush(stream_);
    last_draw_ = now;
  } else if (since >= plain_every_s_) {
    std::fprintf(stream_, "%s\n", render(false).c_str());
    std::fflush(stream_);
    last_draw_ = now;
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (terminal_)
    std::fprintf(stream_, "\r\033[K%s\n", render(true).c_str());
  else
    std::fprintf(stream_, "%s\n", render(false).c_str());
  std::fflush(stream_);
}

}  // namespace onestep
