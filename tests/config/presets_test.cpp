// Every preset in configs/ loads and validates section by section (the same readers `onestep train` uses), so a
// typo in a preset fails here rather than in a user's run.
#include "config/config.h"
#include "data/dataset.h"
#include "metrics/evaluation.h"
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
    onestep::Denoiser model = onestep::build_model(small_model);
    std::unique_ptr<onestep::Objective> objective;
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
