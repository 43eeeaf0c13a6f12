#include "core/error.h"
#include "io/atomic_file.h"
#include "io/run_dir.h"

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

// Issue 12 item 4: a kill during an atomic write leaves "<name>.tmp.<pid>"; resuming removes those of the run's
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

// Issue 12 item 5: on resume the log keeps the records up to the checkpoint's step, drops a torn last line, and
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
