// Progress lines as a log (not a terminal) sees them: the closing line states the measured rate and elapsed time.
#include "core/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string out;
  char buffer[512];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, file)) out.append(buffer, n);
  return out;
}

// The number before " <unit>/s" on the last line.
double printed_rate(const std::string& text, const std::string& unit) {
  const auto end = text.rfind(" " + unit + "/s");
  const auto begin = text.rfind(' ', end - 1);
  return std::stod(text.substr(begin + 1, end - begin - 1));
}

}  // namespace

TEST(Progress, SingleUpdateThenFinishReportsTheRealRateAndElapsedTime) {
  // `onestep sample` with one batch: one update to the total, then finish. It printed "0 samples/s eta --:--".
  std::FILE* log = std::tmpfile();
  ASSERT_NE(log, nullptr);
  onestep::Progress progress("sample", 64, "samples", 10.0, log);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  progress.update(64);
  progress.finish();
  const std::string text = contents(log);
  std::fclose(log);
  EXPECT_THAT(text, HasSubstr("sample 64/64 samples "));
  EXPECT_THAT(text, Not(HasSubstr("eta")));
  EXPECT_THAT(text, HasSubstr(" in 0.2"));  // elapsed: 0.2x s
  const double rate = printed_rate(text, "samples");
  EXPECT_GT(rate, 64 / 0.6);  // 64 samples in at least 0.2 s (and, on a busy machine, well below 0.6 s)
  EXPECT_LE(rate, 64 / 0.2);
}

TEST(Progress, ResumedWorkCountsItsRateFromWhereItResumed) {
  std::FILE* log = std::tmpfile();
  ASSERT_NE(log, nullptr);
  onestep::Progress progress("train", 1000, "it", 10.0, log);
  progress.resume_at(900);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  progress.update(1000);
  progress.finish();
  const std::string text = contents(log);
  std::fclose(log);
  // 100 steps in >= 0.2 s: at most 500 it/s; counting from 0 would claim 1000 steps, >= 1667 it/s on a 0.6 s run.
  EXPECT_LE(printed_rate(text, "it"), 500.0);
  EXPECT_GT(printed_rate(text, "it"), 100 / 0.6);
}

TEST(Progress, PlainLinesShowTheEtaWhileRunning) {
  std::FILE* log = std::tmpfile();
  ASSERT_NE(log, nullptr);
  onestep::Progress progress("eval", 100, "img", /*plain_every_s=*/0.0, log);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  progress.update(50, {{"generate_s", 1.5}});
  const std::string text = contents(log);
  std::fclose(log);
  EXPECT_THAT(text, HasSubstr("eval 50/100 img "));
  EXPECT_THAT(text, HasSubstr(" eta 00:0"));  // about 0.1 s left
  EXPECT_THAT(text, HasSubstr("generate_s 1.5"));
}

TEST(Progress, Formats) {
  EXPECT_EQ(onestep::format_duration(59.4), "00:59");
  EXPECT_EQ(onestep::format_duration(3725), "1:02:05");
  EXPECT_EQ(onestep::format_duration(-1), "--:--");
  EXPECT_EQ(onestep::format_elapsed(0.423), "0.42 s");
  EXPECT_EQ(onestep::format_elapsed(12.34), "12.3 s");
  EXPECT_EQ(onestep::format_elapsed(75), "01:15");
  EXPECT_EQ(onestep::format_rate(0.0123), "0.0123");
  EXPECT_EQ(onestep::format_rate(4.567), "4.57");
  EXPECT_EQ(onestep::format_rate(45.67), "45.7");
  EXPECT_EQ(onestep::format_rate(12345.6), "12346");
}
