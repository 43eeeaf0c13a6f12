// The run summary of `onestep runs` / `onestep info --run` on a synthetic run directory whose numbers are known.
#include "io/run_summary.h"

#include "core/error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/run_onestep.h"
#include "data/temp_dir.h"

using ::testing::HasSubstr;
using onestep::Json;
using onestep::testing::TempDir;
using onestep::testing::write_bytes;

namespace {

// Two sessions: the first (started at unix time 1000) logs steps 100..300 and is killed, the second (a resume
// at 5000, from the step-200 checkpoint) logs 300 and 400. Wall time: 30 s + 25 s.
void make_run(const std::filesystem::path& dir) {
  const Json config{{"objective", {{"method", "ict"}}},
                    {"data", {{"dataset", "fashion-mnist"}}},
                    {"model", {{"arch", "songunet"}}},
                    {"train", {{"steps", 800}, {"batch", 128}, {"lr", 0.0001}, {"optimizer", "radam"},
                               {"device", "cpu"}}}};
  write_bytes(dir / "config.toml", onestep::to_toml(config));
  auto line = [](int64_t step, double loss, double wall, double time, const Json& extra = Json::object()) {
    Json j{{"step", step}, {"loss", loss}, {"lr", 1e-4}, {"images_seen", step * 128}, {"images_per_s", 512.0},
           {"wall_s", wall}, {"time", time}};
    j.update(extra);
    return j.dump() + "\n";
  };
  std::string metrics;
  metrics += line(100, 0.5, 10, 1010, {{"fd_fmnist_1step", 90.0}, {"fd_fmnist_2step", 80.0}});
  metrics += line(200, 0.4, 20, 1020, {{"fd_fmnist_1step", 60.0}, {"fd_fmnist_2step", 50.0}});
  metrics += Json{{"step", 250}, {"nonfinite_loss", true}, {"streak", 1}}.dump() + "\n";
  metrics += line(300, 0.35, 30, 1030, {{"fd_fmnist_1step", 70.0}, {"fd_fmnist_2step", 45.0}});
  metrics += "{\"step\": 31";  // the first session was killed mid-line
  metrics += "\n";
  metrics += line(300, 0.36, 15, 5015);
  metrics += line(400, 0.3, 25, 5025, {{"fd_fmnist_1step", 65.0}, {"fd_fmnist_2step", 40.0}});
  write_bytes(dir / "metrics.jsonl", metrics);
  write_bytes(dir / "checkpoints" / "ckpt-00000300.safetensors", "x");
  write_bytes(dir / "checkpoints" / "ckpt-00000400.safetensors", "x");
  write_bytes(dir / "checkpoints" / "latest", "ckpt-00000400.safetensors\n");
  write_bytes(dir / "samples" / "step-00000200.png", "x");
  write_bytes(dir / "samples" / "step-00000400.png", "x");
}

}  // namespace

TEST(RunSummary, ReadsConfigProgressMetricsCheckpointsAndWallTime) {
  TempDir tmp("run_summary");
  make_run(tmp / "ict");
  const auto s = onestep::summarize_run(tmp / "ict");
  EXPECT_EQ(s.steps_done, 400);
  EXPECT_EQ(s.steps_planned, 800);
  EXPECT_EQ(s.images_seen, 400 * 128);
  ASSERT_TRUE(s.last_loss.has_value());
  EXPECT_DOUBLE_EQ(*s.last_loss, 0.3);
  EXPECT_EQ(s.sessions, 2);
  EXPECT_DOUBLE_EQ(s.wall_seconds, 30 + 25);
  EXPECT_EQ(s.nonfinite_lines, 1);
  EXPECT_EQ(s.unreadable_lines, 1);
  ASSERT_EQ(s.metrics.size(), 2u);
  EXPECT_EQ(s.metrics[0].key, "fd_fmnist_1step");
  EXPECT_DOUBLE_EQ(s.metrics[0].best, 60.0);
  EXPECT_EQ(s.metrics[0].best_step, 200);
  EXPECT_DOUBLE_EQ(s.metrics[0].last, 65.0);
  EXPECT_EQ(s.metrics[0].last_step, 400);
  EXPECT_DOUBLE_EQ(s.metrics[1].best, 40.0);  // the 2-step curve's best is its last
  EXPECT_EQ(s.metrics[1].best_step, 400);
  EXPECT_EQ(s.checkpoints, (std::vector<std::string>{"ckpt-00000300.safetensors", "ckpt-00000400.safetensors"}));
  EXPECT_EQ(s.latest_checkpoint, "ckpt-00000400.safetensors");
  EXPECT_FALSE(s.has_model);
  EXPECT_EQ(s.sample_files, 2);

  const std::string text = onestep::format_run_summary(s);
  EXPECT_THAT(text, HasSubstr("config: ict on fashion-mnist, songunet, batch 128, lr 0.0001, radam, device cpu"));
  EXPECT_THAT(text, HasSubstr("steps: 400 of 800 (50%), 51200 images"));
  EXPECT_THAT(text, HasSubstr("wall time: 00:55 in 2 sessions, last logged 1970-01-01 01:23 UTC"));  // 5025 s
  EXPECT_THAT(text, HasSubstr("last loss: 0.3 (step 400), 512 images/s"));
  EXPECT_THAT(text, HasSubstr("fd_fmnist_1step: last 65 (step 400), best 60 (step 200)"));
  EXPECT_THAT(text, HasSubstr("checkpoints: ckpt-00000300.safetensors, ckpt-00000400.safetensors (latest)"));
  EXPECT_THAT(text, HasSubstr("non-finite losses: 1"));
  EXPECT_THAT(text, HasSubstr("1 unreadable line(s)"));
  EXPECT_LE(std::count(text.begin(), text.end(), '\n'), 24);  // one screen
}

TEST(RunSummary, AFreshRunAndNotARun) {
  TempDir tmp("run_summary_fresh");
  write_bytes(tmp / "new" / "config.toml", onestep::to_toml(Json{{"train", {{"steps", 10}}}}));
  const auto s = onestep::summarize_run(tmp / "new");
  EXPECT_EQ(s.steps_done, 0);
  EXPECT_FALSE(s.last_loss.has_value());
  EXPECT_EQ(s.sessions, 0);
  const std::string text = onestep::format_run_summary(s);
  EXPECT_THAT(text, HasSubstr("last loss: none logged"));
  EXPECT_THAT(text, HasSubstr("checkpoints: none"));
  try {
    onestep::summarize_run(tmp.path);
    FAIL() << "expected an error";
  } catch (const onestep::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("is not a run directory"));
  }
}

TEST(RunsCommand, OneRunOnOneScreenAndATableOfRuns) {
  TempDir tmp("runs_command");
  make_run(tmp / "runs" / "ict");
  write_bytes(tmp / "runs" / "fresh" / "config.toml", onestep::to_toml(Json{{"train", {{"steps", 10}}}}));
  const auto one = onestep::testing::run_onestep("runs " + (tmp / "runs" / "ict").string());
  ASSERT_EQ(one.status, 0) << one.output;
  EXPECT_THAT(one.output, HasSubstr("fd_fmnist_2step: last 40 (step 400), best 40 (step 400)"));
  const auto info = onestep::testing::run_onestep("info --run " + (tmp / "runs" / "ict").string());
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_EQ(info.output, one.output);
  const auto table = onestep::testing::run_onestep("runs " + (tmp / "runs").string());
  ASSERT_EQ(table.status, 0) << table.output;
  EXPECT_THAT(table.output, HasSubstr("run "));
  EXPECT_THAT(table.output, ::testing::ContainsRegex("fresh +\\? +0/10"));
  EXPECT_THAT(table.output, ::testing::ContainsRegex("ict +ict +400/800 +0.3 +fd_fmnist_1step 60 +00:55 +2"));
  const auto bad = onestep::testing::run_onestep("runs " + (tmp / "nothing").string());
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.output, HasSubstr("onestep: error: runs: '"));
}
