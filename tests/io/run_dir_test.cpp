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
