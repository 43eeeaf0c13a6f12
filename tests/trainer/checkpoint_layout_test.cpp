// The checkpoint layout (io/checkpoint_layout.h) as both of its users see it: the trainer writes a training
// checkpoint of original CT (whose EMA teacher is objective state, "objective.teacher.model.*"), and load_model
// reads every weight set of it back.
#include "io/checkpoint_layout.h"
#include "io/safetensors.h"
#include "io/run_dir.h"
#include "objectives/objective.h"
#include "trainer/trainer.h"

#include "error_message.h"
#include "test_device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <unistd.h>

namespace fs = std::filesystem;
using onestep::Json;
namespace layout = onestep::checkpoint_layout;
using ::testing::HasSubstr;
using onestep::testing::error_of;

namespace {

Json ct_root(const Json& ema) {
  return Json{{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 16}, {"num_layers", 2}, {"noise_channels", 8}}},
              {"objective", {{"method", "ct"}, {"s0", 2}, {"s1", 10}}},
              {"train",
               {{"steps", 3}, {"batch", 8}, {"lr", 1e-3}, {"ema", ema}, {"checkpoint_every", 0},
                {"device", onestep::testing::test_device_name()}}}};
}

// A CT run of three steps; returns its final checkpoint and the raw weights and first EMA it trained.
struct CtRun {
  fs::path dir, checkpoint;
  std::map<std::string, torch::Tensor> raw, ema;
};

CtRun train_ct(const std::string& name, const Json& ema) {
  CtRun out;
  out.dir = fs::temp_directory_path() / ("onestep-layout-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(out.dir);
  const Json root = ct_root(ema);
  onestep::RunDir run(out.dir, onestep::RunMode::New);
  run.write_config(root);
  torch::manual_seed(0);
  auto model = onestep::build_model(root);
  auto objective = onestep::build_objective(root, model);
  auto data = std::make_shared<onestep::Dataset>();
  auto g = at::make_generator<at::CPUGeneratorImpl>(3);
  data->samples = torch::randn({20, 2}, g);
  onestep::Trainer trainer(run, root, onestep::TrainConfig::from_config(root), std::nullopt, model,
                           std::move(objective), data);
  trainer.set_quiet(true);
  trainer.train();
  out.checkpoint = trainer.latest_checkpoint();
  for (const auto& item : trainer.model()->named_parameters()) out.raw[item.key()] = item.value().detach().cpu();
  if (!trainer.emas().empty())
    for (const auto& item : trainer.emas().front().model()->named_parameters())
      out.ema[item.key()] = item.value().detach().cpu();
  return out;
}

void expect_weights(onestep::Denoiser& loaded, const std::map<std::string, torch::Tensor>& expected) {
  ASSERT_FALSE(expected.empty());
  for (const auto& item : loaded->named_parameters())
    EXPECT_TRUE(torch::equal(item.value().cpu(), expected.at(item.key()))) << item.key();
}

}  // namespace

TEST(CheckpointLayout, NamesEveryTrainingStateTensorOnce) {
  EXPECT_EQ(layout::ema_prefix("0.999"), "ema.0.999.");
  for (const char* name : {"ema.0.9.model.w", "optim.exp_avg.0", "objective.teacher.model.w", "rng.cpu"})
    EXPECT_TRUE(layout::is_training_state_tensor(name)) << name;
  EXPECT_FALSE(layout::is_training_state_tensor("model.map_layer0.weight"));
  EXPECT_TRUE(layout::in_weight_set("model.w", ""));
  EXPECT_FALSE(layout::in_weight_set("objective.teacher.model.w", ""));
  EXPECT_TRUE(layout::in_weight_set("ema.0.9.model.w", "ema.0.9."));
  EXPECT_FALSE(layout::in_weight_set("model.w", "ema.0.9."));
  EXPECT_EQ(layout::checkpoint_path("c", 42), fs::path("c/ckpt-00000042.safetensors"));
  EXPECT_TRUE(layout::is_checkpoint_file_name("ckpt-00000042.safetensors"));
  EXPECT_FALSE(layout::is_checkpoint_file_name("ckpt-00000042.safetensors.tmp"));
  EXPECT_EQ(layout::ema_names(Json{{"emas", {"a", "b"}}}), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(layout::ema_names(Json::object()).empty());
}

// The step a checkpoint's file name carries (`onestep runs` counts a run's steps with it) is checkpoint_path's
// inverse; other files of the checkpoints folder have none. RunDir and the readers of a run name its files alike.
TEST(CheckpointLayout, CheckpointStepIsTheInverseOfCheckpointPath) {
  for (int64_t step : {0LL, 42LL, 1500LL, 99999999LL, 123456789LL})
    EXPECT_EQ(layout::checkpoint_step(layout::checkpoint_path("c", step).filename().string()), step) << step;
  for (const char* name : {"latest", "ckpt-.safetensors", "ckpt-12ab.safetensors", "ckpt-00000042.safetensors.tmp.7",
                           "model.safetensors", "ckpt--0000042.safetensors"})
    EXPECT_EQ(layout::checkpoint_step(name), std::nullopt) << name;
  const onestep::RunPaths run{"runs/x"};
  EXPECT_EQ(run.model(), fs::path("runs/x/model.safetensors"));
  EXPECT_EQ(run.latest_pointer(), fs::path("runs/x/checkpoints/latest"));
  EXPECT_EQ(layout::checkpoint_path(run.checkpoints(), 7), fs::path("runs/x/checkpoints/ckpt-00000007.safetensors"));
}

// Original CT keeps its EMA teacher as objective state: every weight set of its checkpoints must load without it.
TEST(CheckpointLayout, CtCheckpointWithoutEmaLoadsItsRawWeights) {
  const CtRun run = train_ct("no-ema", Json::array());
  const auto content = onestep::load_safetensors(run.checkpoint);
  ASSERT_NE(content.find("objective.teacher.model.map_layer0.weight"), nullptr);  // the case in question
  onestep::Denoiser by_default = onestep::load_model(run.checkpoint);  // no EMA: the raw weights
  expect_weights(by_default, run.raw);
  onestep::Denoiser raw = onestep::load_model(run.checkpoint, "raw");
  expect_weights(raw, run.raw);
  onestep::Denoiser from_pointer = onestep::load_model(run.dir / "checkpoints" / "latest", "raw");
  expect_weights(from_pointer, run.raw);
  EXPECT_THAT(error_of([&] { onestep::load_model(run.checkpoint, "0.999"); }),
              HasSubstr("no weight set '0.999' (this training checkpoint holds: raw)"));
  fs::remove_all(run.dir);
}

TEST(CheckpointLayout, CtCheckpointWithAnEmaLoadsEachWeightSet) {
  const CtRun run = train_ct("ema", Json::array({0.9}));
  onestep::Denoiser by_default = onestep::load_model(run.checkpoint);  // the first EMA
  expect_weights(by_default, run.ema);
  onestep::Denoiser ema = onestep::load_model(run.checkpoint, "0.9");
  expect_weights(ema, run.ema);
  onestep::Denoiser ema_prefix = onestep::load_model(run.checkpoint, "ema.0.9.");
  expect_weights(ema_prefix, run.ema);
  onestep::Denoiser raw = onestep::load_model(run.checkpoint, "raw");
  expect_weights(raw, run.raw);
  EXPECT_EQ(raw->trained_with(), "ct");
  fs::remove_all(run.dir);
}
