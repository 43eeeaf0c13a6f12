// Every preset in configs/ loads and validates section by section (the same readers `onestep train` uses), so a
// typo in a preset fails here rather than in a user's run.
#include "config/config.h"
#include "core/error.h"
#include "data/dataset.h"
#include "metrics/evaluation.h"
#include "networks/mp_layers.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "samplers/sampler.h"
#include "trainer/train_config.h"

#include <gtest/gtest.h>

namespace {

bool is_training_preset(const onestep::Json& root) { return root.contains("train") && root.contains("objective"); }

TEST(Presets, EveryPresetValidates) {
  const auto names = onestep::list_presets();
  ASSERT_GE(names.size(), 15u);
  int training = 0;
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    onestep::Json root = onestep::load_config_file(onestep::resolve_preset(name));
    root.erase("base");
    EXPECT_NO_THROW(onestep::check_sections(root, {"run", "data", "model", "precond", "objective", "train", "sample",
                                                   "eval"}));
    ASSERT_TRUE(root.contains("model"));
    EXPECT_NO_THROW(onestep::DataConfig::from_config(root));
    EXPECT_NO_THROW(onestep::SamplerConfig::from_config(root).validate());
    EXPECT_NO_THROW(onestep::EvalConfig::from_config(root));
    if (!is_training_preset(root)) continue;
    ++training;
    const auto train = onestep::TrainConfig::from_config(root);
    onestep::Json small_model = root;  // the objective reads only the model's shape and precond
    onestep::MetaInit meta;            // EDM2 presets (up to 1.1e9 parameters) are built without memory
    onestep::Denoiser model = onestep::build_model(small_model);
    std::unique_ptr<onestep::Objective> objective;
    if (root["objective"].value("method", "") == "scd" && root["objective"].value("teacher", "").empty()) {
      // sCD from a teacher the user converts (cifar10-scd: EDM's public checkpoint) names it on the command line.
      EXPECT_THROW(onestep::build_objective(root, model), onestep::Error);
      continue;
    }
    ASSERT_NO_THROW(objective = onestep::build_objective(root, model));
    const auto objective_json = objective->to_json();
    if (objective_json["method"] == "ect") {
      // ECT must reach its later stages within the preset's run, or dt never shrinks.
      const int64_t images = train.steps * train.batch;
      const int64_t stages = images / objective_json["stage_length"].get<int64_t>();
      EXPECT_GE(stages, 4) << "ECT preset with " << stages << " stages";
    }
    if (objective_json["method"] == "ict") {
      EXPECT_EQ(objective_json["s0"], 10);
      EXPECT_EQ(objective_json["s1"], 1280);
      EXPECT_EQ(objective_json["teacher"], "current");
    }
  }
  EXPECT_GE(training, 10);
}

}  // namespace

namespace {

onestep::Json preset(const std::string& name) {
  onestep::Json root = onestep::load_config_file(onestep::resolve_preset(name));
  root.erase("base");
  return root;
}

int64_t ect_stages(const onestep::Json& root) {
  const auto train = onestep::TrainConfig::from_config(root);
  return train.steps * train.batch / root["objective"]["stage_length"].get<int64_t>();
}

}  // namespace

TEST(Presets, CifarEctIsTheReferenceScript) {
  // run_ecm.sh: --duration=25.6 (Mimg) --batch=128 --tick=12.8 (kimg) --double=250 (ticks): 200k iterations,
  // a stage every 3.2 Mimg, 8 stages.
  const auto root = preset("cifar10-ect");
  const auto train = onestep::TrainConfig::from_config(root);
  EXPECT_EQ(train.steps, 200000);
  EXPECT_EQ(train.batch, 128);
  EXPECT_EQ(train.steps * train.batch, 25600000);
  EXPECT_EQ(root["objective"]["stage_length"], 250 * 12800);
  EXPECT_EQ(ect_stages(root), 8);
  EXPECT_DOUBLE_EQ(train.lr, 1e-4);
  EXPECT_FALSE(root["data"].value("flip", true));  // run_ecm.sh --augment=0.0, no --xflip
  // The paper's 400k-iteration row, named as such: the same script run twice as long (16 stages).
  const auto long_run = preset("cifar10-ect-400k");
  EXPECT_EQ(onestep::TrainConfig::from_config(long_run).steps, 400000);
  EXPECT_EQ(ect_stages(long_run), 16);
}

TEST(Presets, CifarCtIsTheConsistencyModelsReferenceRun) {
  // openai/consistency_models_cifar10 launch.sh:52 with configs/cifar10_ve_ct_adaptive.py.
  const auto root = preset("cifar10-ct");
  const auto train = onestep::TrainConfig::from_config(root);
  EXPECT_EQ(train.steps, 800000);
  EXPECT_EQ(train.batch, 512);
  EXPECT_EQ(train.optimizer, onestep::OptimizerKind::RAdam);
  EXPECT_DOUBLE_EQ(train.lr, 4e-4);
  ASSERT_EQ(train.ema.size(), 1u);
  EXPECT_DOUBLE_EQ(train.ema[0], 0.9999);
  EXPECT_TRUE(root["data"].value("flip", false));
  onestep::Denoiser model = onestep::build_model(root);
  EXPECT_EQ(model->model_config()["dropout"], 0.0);
  EXPECT_EQ(model->model_config()["fourier_scale"], 16.0);
  const auto objective = onestep::build_objective(root, model)->to_json();
  EXPECT_EQ(objective["method"], "ct");
  EXPECT_EQ(objective["s0"], 2);
  EXPECT_EQ(objective["s1"], 150);
  EXPECT_EQ(objective["mu0"], 0.9);
  EXPECT_EQ(objective["teacher"], "ema");
  EXPECT_EQ(objective["curriculum"], "sqrt");
}

TEST(Presets, CifarIctFlipsImagesAsTheConsistencyModelCodeBase) {
  // openai/consistency_models_cifar10: data.random_flip = True for CIFAR-10 training batches.
  const auto root = preset("cifar10-ict");
  EXPECT_TRUE(root["data"].value("flip", false));
  const auto train = onestep::TrainConfig::from_config(root);
  EXPECT_EQ(train.steps, 400000);
  EXPECT_EQ(train.batch, 1024);
}
