// One run, one writer, with real processes: a second `onestep train` on a directory that a live trainer holds is
// refused in every order (new + --force, new + --resume, two --resume), a lock left by a trainer killed with -9
// is taken over with a note, and `onestep launch` takes its workers down with it (kill -9 of the launcher) or
// forwards SIGTERM to them.
#include "distributed/processes.h"
#include "data/temp_dir.h"
#include "io/run_lock.h"
#include "build_paths.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace onestep {
namespace {

using namespace onestep::testing;
using ::testing::HasSubstr;
using ::testing::Not;

// A tiny points-iCT run that trains until it is stopped (a checkpoint every 5 steps).
std::vector<std::string> endless_train(const std::filesystem::path& run, const std::string& mode = "") {
  std::vector<std::string> args{ONESTEP_BINARY, "train", "--run", run.string()};
  if (mode == "--resume") {
    args.push_back("--resume");
    return args;
  }
  if (!mode.empty()) args.push_back(mode);
  for (const char* s : {"model.hidden=16", "model.num_layers=1", "model.noise_channels=8", "data.num_points=512",
                        "train.batch=32", "train.threads=1", "train.log_every=1", "train.checkpoint_every=5",
                        "train.steps=1000000"})
    args.insert(args.end(), {"--set", s});
  args.insert(args.end(), {"--config", "points-ict"});
  return args;
}

// Waits until `path` exists (and is not empty), at most `seconds`.
bool wait_for_file(const std::filesystem::path& path, int seconds = 60) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec) && std::filesystem::file_size(path, ec) > 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// A process that exists and is not a zombie.
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return false;
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

// The children of `parent` (from /proc/<pid>/stat's ppid field).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* proc = ::opendir("/proc");
  while (dirent* entry = proc ? ::readdir(proc) : nullptr) {
    const std::string name = entry->d_name;
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat("/proc/" + name + "/stat");
    std::string text;
    if (!std::getline(stat, text)) continue;
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    std::string state;
    long ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  if (proc) ::closedir(proc);
  return out;
}

bool all_gone(const std::vector<pid_t>& pids, int seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (std::none_of(pids.begin(), pids.end(), running)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// Runs a second trainer to its end; returns its exit status and output.
std::pair<int, std::string> second_trainer(const std::vector<std::string>& args, const std::filesystem::path& log) {
  const Child c = spawn(args, {{"OMP_NUM_THREADS", "1"}}, log);
  const int status = wait_for(c, std::chrono::seconds(60));
  return {status, read_text(log)};
}

TEST(RunLock, SecondTrainerOnALiveRunIsRefusedInEveryOrder) {
  TempDir dir("run_lock");
  const auto run = dir / "run";
  const Child first = spawn(endless_train(run), {{"OMP_NUM_THREADS", "1"}}, dir / "first.log");
  ASSERT_TRUE(wait_for_file(run / "checkpoints" / "latest")) << read_text(dir / "first.log");
  const std::string config_before = read_text(run / "config.toml");
  const std::string holder = "pid " + std::to_string(first.pid);

  for (const std::string mode : {"", "--force", "--resume"}) {
    auto [status, log] = second_trainer(endless_train(run, mode), dir / "second.log");
    EXPECT_EQ(status, 1) << mode << ": " << log;
    EXPECT_THAT(log, HasSubstr("onestep: error: run directory '" + run.string() + "' is in use: onestep train (" +
                               holder + " on host "))
        << mode;
    EXPECT_THAT(log, HasSubstr("a run has one writer")) << mode;
  }
  EXPECT_TRUE(running(first.pid));
  EXPECT_EQ(read_text(run / "config.toml"), config_before);  // --force removed nothing
  EXPECT_THAT(read_text(run / "lock"), HasSubstr("\"pid\":" + std::to_string(first.pid)));

  // Killed with -9, the first leaves its lock file: a resume takes it over with a note, and a second resume
  // while that one runs is refused.
  ::kill(first.pid, SIGKILL);
  EXPECT_EQ(wait_for(first, std::chrono::seconds(10)), 128 + SIGKILL);
  std::filesystem::remove(run / "metrics.jsonl");  // appears again once the resumed run logs
  const Child resumed = spawn(endless_train(run, "--resume"), {{"OMP_NUM_THREADS", "1"}}, dir / "resumed.log");
  ASSERT_TRUE(wait_for_file(run / "metrics.jsonl")) << read_text(dir / "resumed.log");
  EXPECT_THAT(read_text(dir / "resumed.log"),
              HasSubstr("its lock named " + holder + " on host "));
  EXPECT_THAT(read_text(dir / "resumed.log"), HasSubstr("which ended without releasing it (killed?); taking it over"));
  auto [status, log] = second_trainer(endless_train(run, "--resume"), dir / "second_resume.log");
  EXPECT_EQ(status, 1) << log;
  EXPECT_THAT(log, HasSubstr("is in use: onestep train (pid " + std::to_string(resumed.pid) + " on host "));
  ::kill(resumed.pid, SIGKILL);
  wait_for(resumed, std::chrono::seconds(10));
}

TEST(RunLock, TwoNewTrainersStartedTogetherLeaveOneWriter) {
  TempDir dir("run_lock_new");
  const auto run = dir / "run";
  const Child a = spawn(endless_train(run), {{"OMP_NUM_THREADS", "1"}}, dir / "a.log");
  const Child b = spawn(endless_train(run), {{"OMP_NUM_THREADS", "1"}}, dir / "b.log");
  // One of them is refused (in use, or the directory already holds the other's run); the other trains.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status_a = -2, status_b = -2;
  while (std::chrono::steady_clock::now() < until && status_a == -2 && status_b == -2) {
    int status = 0;
    if (::waitpid(a.pid, &status, WNOHANG) == a.pid) status_a = WEXITSTATUS(status);
    if (::waitpid(b.pid, &status, WNOHANG) == b.pid) status_b = WEXITSTATUS(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool a_refused = status_a == 1;
  EXPECT_TRUE(a_refused || status_b == 1) << read_text(dir / "a.log") << read_text(dir / "b.log");
  const Child& winner = a_refused ? b : a;
  EXPECT_TRUE(running(winner.pid));
  ::kill(winner.pid, SIGKILL);
  wait_for(winner, std::chrono::seconds(10));
}

TEST(RunLock, LauncherKilledWithMinus9TakesItsWorkersDown) {
  TempDir dir("launch_kill");
  std::vector<std::string> args{ONESTEP_BINARY, "launch", "--nproc", "2", "--"};
  const auto train = endless_train(dir / "run");
  args.insert(args.end(), train.begin() + 1, train.end());
  args.insert(args.end(), {"--dist-timeout", "20"});
  const Child launcher = spawn(args, {{"OMP_NUM_THREADS", "1"}}, dir / "launch.log");
  ASSERT_TRUE(wait_for_file(dir / "run" / "metrics.jsonl")) << read_text(dir / "launch.log");
  const std::vector<pid_t> workers = children_of(launcher.pid);
  ASSERT_EQ(workers.size(), 2u);
  // The workers run in a process group of their own (rank 0's pid), not the launcher's.
  EXPECT_EQ(::getpgid(workers[0]), ::getpgid(workers[1]));
  EXPECT_NE(::getpgid(workers[0]), ::getpgid(launcher.pid));
  ::kill(launcher.pid, SIGKILL);
  EXPECT_EQ(wait_for(launcher, std::chrono::seconds(10)), 128 + SIGKILL);
  EXPECT_TRUE(all_gone(workers, 10)) << read_text(dir / "launch.log");
}

TEST(RunLock, LauncherForwardsSigtermToItsWorkers) {
  TempDir dir("launch_term");
  std::vector<std::string> args{ONESTEP_BINARY, "launch", "--nproc", "2", "--grace", "5", "--"};
  const auto train = endless_train(dir / "run");
  args.insert(args.end(), train.begin() + 1, train.end());
  args.insert(args.end(), {"--dist-timeout", "20"});
  const Child launcher = spawn(args, {{"OMP_NUM_THREADS", "1"}}, dir / "launch.log");
  ASSERT_TRUE(wait_for_file(dir / "run" / "metrics.jsonl")) << read_text(dir / "launch.log");
  const std::vector<pid_t> workers = children_of(launcher.pid);
  ASSERT_EQ(workers.size(), 2u);
  ::kill(launcher.pid, SIGTERM);
  const int status = wait_for(launcher, std::chrono::seconds(30));
  EXPECT_EQ(status, 128 + SIGTERM) << read_text(dir / "launch.log");
  EXPECT_TRUE(all_gone(workers, 5));
  EXPECT_THAT(read_text(dir / "launch.log"), HasSubstr("was killed by signal 15"));
}

}  // namespace
}  // namespace onestep
