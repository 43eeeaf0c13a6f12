#include "core/cpu_wait.h"
#include "core/error.h"

#include <gtest/gtest.h>

using onestep::busy_cores_between;
using onestep::choose_cpu_wait;
using onestep::CpuWaitDecision;

TEST(CpuWait, BusyCoresFromTwoProcStatSnapshots) {
  // Totals 1000 -> 1250 jiffies, idle + iowait 850 -> 900: 200 of 250 busy, i.e. 0.8 of the 2 cores each = 1.6.
  const std::string before = "cpu  100 0 50 800 50 0 0 0 0 0";
  const std::string after = "cpu  250 0 100 850 50 0 0 0 0 0";
  EXPECT_NEAR(busy_cores_between(before, after, 2), 1.6, 1e-12);
  // iowait counts as idle: 4 cores, 100 of 400 new jiffies busy.
  EXPECT_NEAR(busy_cores_between("cpu 0 0 0 0 0", "cpu 100 0 0 200 100", 4), 1.0, 1e-12);
  EXPECT_EQ(busy_cores_between("garbage", after, 2), 0.0);
  EXPECT_EQ(busy_cores_between(after, before, 2), 0.0);  // no time passed (or went back)
  EXPECT_EQ(busy_cores_between("cpu0 1 2 3 4", "cpu0 5 6 7 8", 2), 0.0);  // not the aggregate line
}

TEST(CpuWait, AutoSleepsOnlyWhenTheIdleCoresCannotHoldTheThreads) {
  // 2 threads on 2 cores: 1.6 busy leaves 0.4 idle -> sleep; 0.3 busy leaves 1.7 -> keep spinning.
  EXPECT_EQ(choose_cpu_wait("auto", false, 2, 2, 1.6), CpuWaitDecision::sleep);
  EXPECT_EQ(choose_cpu_wait("auto", false, 2, 2, 1.0), CpuWaitDecision::sleep);
  EXPECT_EQ(choose_cpu_wait("auto", false, 2, 2, 0.3), CpuWaitDecision::keep);
  EXPECT_EQ(choose_cpu_wait("auto", false, 8, 16, 3.0), CpuWaitDecision::keep);
  EXPECT_EQ(choose_cpu_wait("auto", false, 8, 16, 9.0), CpuWaitDecision::sleep);
  // One thread has no team to wait for; the user's environment always wins.
  EXPECT_EQ(choose_cpu_wait("auto", false, 1, 2, 2.0), CpuWaitDecision::keep);
  EXPECT_EQ(choose_cpu_wait("auto", true, 2, 2, 2.0), CpuWaitDecision::keep);
  EXPECT_EQ(choose_cpu_wait("sleep", true, 2, 2, 0.0), CpuWaitDecision::keep);
  // No /proc/stat: no core count, nothing known about the load.
  EXPECT_EQ(choose_cpu_wait("auto", false, 2, 0, 0.0), CpuWaitDecision::keep);
}

TEST(CpuWait, ExplicitPoliciesIgnoreTheLoad) {
  EXPECT_EQ(choose_cpu_wait("spin", false, 2, 2, 2.0), CpuWaitDecision::keep);
  EXPECT_EQ(choose_cpu_wait("sleep", false, 2, 2, 0.0), CpuWaitDecision::sleep);
  EXPECT_THROW(choose_cpu_wait("busy", false, 2, 2, 0.0), onestep::Error);
}
