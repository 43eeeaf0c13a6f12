#include "core/cpu_wait.h"

#include "core/error.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace onestep {

namespace {

std::vector<char*> saved_arguments;

struct CpuTimes {
  double total = 0;
  double idle = 0;  // idle + iowait
  bool valid = false;
};

CpuTimes parse_cpu_line(const std::string& stat) {
  CpuTimes t;
  std::istringstream in(stat);
  std::string label;
  if (!(in >> label) || label != "cpu") return t;
  std::vector<double> fields;
  double v;
  while (fields.size() < 8 && in >> v) fields.push_back(v);
  if (fields.size() < 4) return t;
  for (double f : fields) t.total += f;
  t.idle = fields[3] + (fields.size() > 4 ? fields[4] : 0.0);
  t.valid = true;
  return t;
}

std::string read_proc_stat(int* cores) {
  std::ifstream in("/proc/stat");
  std::string first, line;
  std::getline(in, first);
  int count = 0;
  while (std::getline(in, line))
    if (line.rfind("cpu", 0) == 0 && line.size() > 3 && line[3] >= '0' && line[3] <= '9') ++count;
  if (cores) *cores = count;
  return first;
}

}  // namespace

double busy_cores_between(const std::string& stat_before, const std::string& stat_after, int cores) {
  const CpuTimes a = parse_cpu_line(stat_before), b = parse_cpu_line(stat_after);
  if (!a.valid || !b.valid || b.total <= a.total || cores <= 0) return 0.0;
  const double busy = (b.total - a.total) - (b.idle - a.idle);
  return std::max(0.0, busy / (b.total - a.total)) * cores;
}

CpuWaitDecision choose_cpu_wait(const std::string& policy, bool environment_set, int64_t threads, int cores,
                                double busy_cores) {
  require(policy == "auto" || policy == "spin" || policy == "sleep", "train.cpu_wait must be auto, spin or sleep, got '",
          policy, "'");
  if (environment_set || threads <= 1 || policy == "spin") return CpuWaitDecision::keep;
  if (policy == "sleep") return CpuWaitDecision::sleep;
  // auto: spinning pays only while every thread of the run has an idle core of its own. Without a count of the
  // cores (no /proc/stat) nothing is known, and libgomp's default stays.
  if (cores <= 0) return CpuWaitDecision::keep;
  const double idle_cores = static_cast<double>(cores) - busy_cores;
  return idle_cores < static_cast<double>(threads) - 0.5 ? CpuWaitDecision::sleep : CpuWaitDecision::keep;
}

void remember_process_arguments(int argc, char** argv) { saved_arguments.assign(argv, argv + argc); }

void apply_cpu_wait_policy(const std::string& policy, int64_t threads, const std::string& setting) {
  const bool environment_set = std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr;
  if (environment_set || threads <= 1 || policy == "spin") return;
  int cores = 0;
  double busy = 0.0;
  if (policy == "auto") {
    // Snapshots 0.25 s apart while this process sleeps: what the other processes use now.
    const std::string before = read_proc_stat(nullptr);
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const std::string after = read_proc_stat(&cores);
    busy = busy_cores_between(before, after, cores);
  }
  if (choose_cpu_wait(policy, environment_set, threads, cores, busy) != CpuWaitDecision::sleep) return;
  if (policy == "auto")
    std::fprintf(stderr,
                 "note: other processes keep %.1f of %d cores busy: OpenMP threads will sleep between parallel "
                 "regions (OMP_WAIT_POLICY=passive; spinning is 5-10x slower on busy cores, 1.7x faster on idle "
                 "ones; %s = spin keeps spinning)\n",
                 busy, cores, setting.c_str());
  else
    std::fprintf(stderr, "note: %s = sleep: OpenMP threads sleep between parallel regions (OMP_WAIT_POLICY=passive)\n",
                 setting.c_str());
  if (saved_arguments.empty()) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  std::vector<char*> arguments = saved_arguments;
  arguments.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  execv("/proc/self/exe", arguments.data());
  std::fprintf(stderr, "note: could not re-execute with OMP_WAIT_POLICY=passive; OpenMP threads keep spinning\n");
}

}  // namespace onestep
