#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
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

std::string format_elapsed(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  if (seconds >= 59.95) return format_duration(seconds);
  char buf[32];
  std::snprintf(buf, sizeof buf, seconds < 9.995 ? "%.2f s" : "%.1f s", seconds);
  return buf;
}

std::string format_rate(double per_second) {
  if (!std::isfinite(per_second) || per_second < 0) return "--";
  char buf[48];
  if (per_second >= 100)
    std::snprintf(buf, sizeof buf, "%.0f", per_second);
  else if (per_second >= 10)
    std::snprintf(buf, sizeof buf, "%.1f", per_second);
  else if (per_second >= 1)
    std::snprintf(buf, sizeof buf, "%.2f", per_second);
  else
    std::snprintf(buf, sizeof buf, "%.3g", per_second);
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

void Progress::resume_at(int64_t done) {
  start_done_ = done_ = done;
  start_ = std::chrono::steady_clock::now();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  const double elapsed = elapsed_seconds();
  return elapsed > 0 ? static_cast<double>(done_ - start_done_) / elapsed : 0.0;
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
  out << " " << format_rate(r) << " " << unit_ << "/s";
  if (finished_)
    out << " in " << format_elapsed(elapsed_seconds());
  else
    out << " eta " << format_duration(r > 0 ? (total_ - done_) / r : NAN);
  char buf[96];
  for (const auto& [name, value] : values_) {
    std::snprintf(buf, sizeof buf, " %s %.4g", name.c_str(), value);
    out << buf;
  }
  return out.str();
}

void Progress::update(int64_t done, const std::vector<std::pair<std::string, double>>& values) {
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
