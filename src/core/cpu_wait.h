#pragma once
// How OpenMP's worker threads wait between the many short parallel regions of a CPU training step: spinning
// (libgomp's default, up to ~300k pause loops) or sleeping (OMP_WAIT_POLICY=passive). Spinning is 1.6-1.8x faster
// on idle cores and 5-10x slower when other processes compete for them (a spinning thread holds the core its
// partner needs): bench/RESULTS.md "Resume speed". libgomp reads the policy once, when it loads, so choosing it
// means re-executing the process with the variable set; the numbers a run computes do not depend on it.
#include <cstdint>
#include <string>

namespace onestep {

enum class CpuWaitDecision { keep, sleep };

// Cores kept busy by other work between two snapshots of /proc/stat (its first line, "cpu user nice system idle
// iowait ..."), with `cores` CPUs in all. Returns 0 for unreadable snapshots.
double busy_cores_between(const std::string& stat_before, const std::string& stat_after, int cores);

// policy: train.cpu_wait ("auto" | "spin" | "sleep"); environment_set: the user set OMP_WAIT_POLICY or
// GOMP_SPINCOUNT (always respected); threads: the intra-op threads of the run; busy_cores: see above.
// "auto" sleeps when the idle cores cannot hold the run's threads.
CpuWaitDecision choose_cpu_wait(const std::string& policy, bool environment_set, int64_t threads, int cores,
                                double busy_cores);

// The process's arguments, for a re-execution (called once from main).
void remember_process_arguments(int argc, char** argv);

// Decides for a CPU run with `threads` intra-op threads and, when that means sleeping and the environment does not
// say so yet, re-executes this process (same PID, same arguments) with OMP_WAIT_POLICY=passive. Returns when
// nothing changes (or when the re-execution fails, with a note). `setting` names where the policy came from, for
// the notes ("train.cpu_wait" for training, "--cpu-wait" for sample and eval).
void apply_cpu_wait_policy(const std::string& policy, int64_t threads, const std::string& setting = "train.cpu_wait");

}  // namespace onestep
