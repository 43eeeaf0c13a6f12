#include "core/error.h"
#include "io/atomic_file.h"
#include "io/run_dir.h"
#include "io/file_size_limit.h"

#include <gtest/gtest.h>

#include <fstream>

namespace fs = std::filesystem;

namespace {
fs::path fresh_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("onestep_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}
}  // namespace

TEST(RunDir, NewRunRefusesExistingRunWithoutForce) {
  const fs::path root = fresh_dir("rundir");
  {
    onestep::RunDir run(root, onestep::RunMode::New);
    run.write_config(onestep::Json{{"train", {{"lr", 1e-4}}}});
  }
  EXPECT_THROW(onestep::RunDir(root, onestep::RunMode::New), onestep::Error);
  onestep::RunDir resumed(root, onestep::RunMode::Resume);
  EXPECT_TRUE(resumed.resumed());
  EXPECT_DOUBLE_EQ(resumed.read_config()["train"]["lr"].get<double>(), 1e-4);
  onestep::RunDir forced(root, onestep::RunMode::Force);
  EXPECT_FALSE(fs::exists(forced.config_path()));
  fs::remove_all(root);
}

TEST(RunDir, ResumeOfMissingRunFails) {
  EXPECT_THROW(onestep::RunDir(fresh_dir("missing"), onestep::RunMode::Resume), onestep::Error);
}

TEST(AtomicFile, FailedWriteLeavesOldContent) {
  const fs::path dir = fresh_dir("atomic");
  fs::create_directories(dir);
  const fs::path file = dir / "a.txt";
  onestep::write_text_atomically(file, "old");
  EXPECT_THROW(onestep::write_file_atomically(file,
                                              [](std::ostream& out) {
                                                out << "partial";
                                                throw onestep::Error("boom");
                                              }),
               onestep::Error);
  EXPECT_EQ(onestep::read_file_bytes(file), "old");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);  // no temp left
  fs::remove_all(dir);
}

TEST(MetricsLog, AppendsOneJsonObjectPerLine) {
  const fs::path dir = fresh_dir("metrics");
  fs::create_directories(dir);
  {
    onestep::MetricsLog log(dir / "m.jsonl");
    log.write({{"step", 1}, {"loss", 0.5}});
    log.write({{"step", 2}, {"loss", 0.25}});
  }
  std::ifstream in(dir / "m.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto j = onestep::Json::parse(line);
    EXPECT_EQ(j["step"].get<int>(), ++n);
  }
  EXPECT_EQ(n, 2);
  fs::remove_all(dir);
}

// A kill during an atomic write leaves "<name>.tmp.<pid>"; resuming removes those of the run's
// own files whose process is gone, and nothing else.
TEST(RunDir, ResumeRemovesStaleTempFilesOfItsOwnPattern) {
  const fs::path root = fresh_dir("rundir_stale");
  {
    onestep::RunDir run(root, onestep::RunMode::New);
    run.write_config(onestep::Json{{"train", {{"lr", 1e-4}}}});
  }
  auto touch = [](const fs::path& p) { std::ofstream(p) << "x"; };
  const std::string dead_pid = "999999999";  // above any pid_max: no such process
  const fs::path stale_ckpt = root / "checkpoints" / ("ckpt-00000040.safetensors.tmp." + dead_pid);
  const fs::path stale_latest = root / "checkpoints" / ("latest.tmp." + dead_pid);
  const fs::path stale_metrics = root / ("metrics.jsonl.tmp." + dead_pid);
  const fs::path live = root / "checkpoints" / "ckpt-00000050.safetensors.tmp.1";  // pid 1 exists
  const fs::path foreign = root / "checkpoints" / ("notes.txt.tmp." + dead_pid);
  const fs::path not_pid = root / "checkpoints" / "ckpt-00000040.safetensors.tmp.abc";
  for (const auto& p : {stale_ckpt, stale_latest, stale_metrics, live, foreign, not_pid}) touch(p);
  onestep::RunDir resumed(root, onestep::RunMode::Resume);
  EXPECT_FALSE(fs::exists(stale_ckpt));
  EXPECT_FALSE(fs::exists(stale_latest));
  EXPECT_FALSE(fs::exists(stale_metrics));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(foreign));
  EXPECT_TRUE(fs::exists(not_pid));
  EXPECT_EQ(resumed.remove_stale_temp_files(), 0);
  fs::remove_all(root);
}

// On resume the log keeps the records up to the checkpoint's step, drops a torn last line, and
// appends after them.
TEST(MetricsLog, TruncateAfterStepKeepsEachStepOnce) {
  const fs::path root = fresh_dir("metrics_truncate");
  fs::create_directories(root);
  const fs::path path = root / "metrics.jsonl";
  std::ofstream(path) << "{\"step\":10,\"loss\":1}\n{\"step\":20,\"loss\":2}\n{\"step\":30,\"loss\":3}\n{\"step\":3";
  onestep::MetricsLog log(path);
  log.truncate_after_step(20);
  log.write(onestep::Json{{"step", 30}, {"loss", 4}});
  EXPECT_EQ(onestep::read_file_bytes(path),
            "{\"step\":10,\"loss\":1}\n{\"step\":20,\"loss\":2}\n{\"loss\":4,\"step\":30}\n");
  fs::remove_all(root);
}

// One run, one writer (io/run_lock.h): the run lock is taken before anything is written; a second writer is
// refused naming the holder (flock locks of two opens conflict within one process too), and the lock file is
// gone once released.
TEST(RunLock, SecondWriterIsRefusedNamingTheHolder) {
  const fs::path root = fresh_dir("run_lock");
  {
    onestep::RunDir first(root, onestep::RunMode::New, onestep::RunLocking::Lock);
    first.write_config(onestep::Json{{"train", {{"lr", 1e-4}}}});
    const std::string holder = "pid " + std::to_string(::getpid()) + " on host ";
    for (auto mode : {onestep::RunMode::New, onestep::RunMode::Force, onestep::RunMode::Resume}) {
      try {
        onestep::RunDir second(root, mode, onestep::RunLocking::Lock);
        ADD_FAILURE() << "a second writer was let in";
      } catch (const onestep::Error& e) {
        EXPECT_NE(std::string(e.what()).find("run directory '" + root.string() + "' is in use: onestep train (" +
                                             holder),
                  std::string::npos)
            << e.what();
      }
    }
    EXPECT_TRUE(fs::exists(first.config_path()));  // the refused --force removed nothing
    // Readers and the other data-parallel ranks join without the lock.
    onestep::RunDir joined(root, onestep::RunMode::Resume);
    EXPECT_TRUE(fs::exists(root / "lock"));
  }
  EXPECT_FALSE(fs::exists(root / "lock"));
  {
    // Force with the lock empties the directory but keeps its own lock file.
    onestep::RunDir forced(root, onestep::RunMode::Force, onestep::RunLocking::Lock);
    EXPECT_FALSE(fs::exists(forced.config_path()));
    EXPECT_TRUE(fs::exists(root / "lock"));
    EXPECT_TRUE(fs::exists(forced.checkpoints()));
  }
  fs::remove_all(root);
}

TEST(RunLock, StaleLockOfAGoneProcessIsTakenOverWithANote) {
  const fs::path root = fresh_dir("run_lock_stale");
  fs::create_directories(root);
  // What a trainer killed with -9 leaves: its lock file, naming it, with no lock held on it.
  std::ofstream(root / "lock") << R"({"host":"elsewhere","pid":999999999,"since":"2026-01-01 00:00:00 UTC"})" << "\n";
  ::testing::internal::CaptureStderr();
  {
    onestep::RunDir run(root, onestep::RunMode::New, onestep::RunLocking::Lock);  // only the lock file: a new run
    EXPECT_NE(onestep::read_file_bytes(root / "lock").find("\"pid\":" + std::to_string(::getpid())),
              std::string::npos);
  }
  const std::string note = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(note.find("its lock named pid 999999999 on host elsewhere, since 2026-01-01 00:00:00 UTC, which ended "
                      "without releasing it (killed?); taking it over"),
            std::string::npos)
      << note;
  EXPECT_EQ(onestep::RunLock::describe_holder("not json"), "");
  fs::remove_all(root);
}

// Disk full while logging: the line that does not fit is cut back (no torn line for a resume to repair), the
// error names the log and asks "disk full?" as the checkpoint path does, and logging goes on once space returns.
TEST(MetricsLog, DiskFullLeavesNoTornLineAndSaysDiskFull) {
  const fs::path dir = fresh_dir("metrics_full");
  fs::create_directories(dir);
  const fs::path path = dir / "metrics.jsonl";
  onestep::MetricsLog log(path);
  log.write({{"step", 1}, {"loss", 0.5}});
  const std::string first = onestep::read_file_bytes(path);
  std::string error;
  {
    onestep::testing::FileSizeLimit full(first.size() + 10);  // room for 10 bytes of the next line only
    try {
      log.write({{"step", 2}, {"loss", 0.25}, {"note", std::string(100, 'x')}});
    } catch (const onestep::Error& e) {
      error = e.what();
    }
  }
  EXPECT_EQ(error, "cannot write metrics log '" + path.string() + "': File too large (disk full?)");
  EXPECT_EQ(onestep::read_file_bytes(path), first);
  log.write({{"step", 3}});
  EXPECT_EQ(onestep::read_file_bytes(path), first + "{\"step\":3}\n");
  fs::remove_all(dir);
}
