// The ImageNet-64 presets carry their references' numbers (locuslab/ect branch imgnet run_imgnet_ecm.sh and
// ct_train.py; NVlabs/edm2 train_edm2.py and training_loop.py), and the EDM2 network presets build the sizes whose
// parameter counts EDM2's code gives.
#include "config/config.h"
#include "networks/mp_layers.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "samplers/sampler.h"
#include "trainer/train_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

namespace {

onestep::Json in64_preset(const std::string& name) {
  onestep::Json root = onestep::load_config_file(onestep::resolve_preset(name));
  root.erase("base");
  return root;
}

TEST(ImageNet64Presets, EctSIsTheReferenceScript) {
  const auto root = in64_preset("imagenet64-ect-s");
  const auto train = onestep::TrainConfig::from_config(root);
  // run_imgnet_ecm.sh: --duration=12.8 (Mimg) --batch=128 --tick=6.4 (kimg) --double 500 (ticks).
  EXPECT_EQ(train.steps * train.batch, 12800000);
  EXPECT_EQ(root["objective"]["stage_length"], 500 * 6400);
  EXPECT_EQ(train.steps * train.batch / root["objective"]["stage_length"].get<int64_t>(), 4);
  EXPECT_EQ(train.optimizer, onestep::OptimizerKind::Adam);
  EXPECT_DOUBLE_EQ(train.hyper.beta2, 0.99);
  // learning_rate_schedule(ref_lr=1e-3, ref_batches=2000): constant to 256k images, then 1 / sqrt(images / 256k).
  EXPECT_DOUBLE_EQ(train.lr_factor(0, 256000), 1.0);
  EXPECT_DOUBLE_EQ(train.lr_factor(0, 4 * 256000), 0.5);
  const auto rules = train.ema_rules();
  ASSERT_EQ(rules.size(), 4u);
  EXPECT_EQ(rules[0].name(), "0.9999");
  EXPECT_EQ(rules[1].name(), "phema0.01");
  onestep::MetaInit meta;
  onestep::Denoiser model = onestep::build_model(root);
  EXPECT_EQ(model->model_config()["model_channels"], 192);
  EXPECT_EQ(model->model_config()["dropout_res"], 16);
  EXPECT_EQ(model->label_dim(), 1000);
  const auto objective = onestep::build_objective(root, model)->to_json();
  EXPECT_EQ(objective["q"], 4.0);
  EXPECT_EQ(objective["weighting"], "snrpk");
  EXPECT_EQ(objective["huber_c"], 0.06);
  const auto sampler = onestep::SamplerConfig::from_config(root);
  EXPECT_EQ(sampler.sigmas, (std::vector<double>{80.0, 1.526}));
}

TEST(ImageNet64Presets, EctSizesFollowCtTrainPresets) {
  const std::vector<std::tuple<std::string, int64_t, double, double>> sizes = {
      {"m", 256, 0.0009, 0.50}, {"l", 320, 0.0008, 0.50}, {"xl", 384, 0.0007, 0.50}};
  for (const auto& [size, channels, lr, dropout] : sizes) {
    const auto root = in64_preset("imagenet64-ect-" + size);
    onestep::MetaInit meta;
    onestep::Denoiser model = onestep::build_model(root);
    EXPECT_EQ(model->model_config()["model_channels"], channels) << size;
    EXPECT_EQ(model->model_config()["dropout"], dropout) << size;
    EXPECT_DOUBLE_EQ(onestep::TrainConfig::from_config(root).lr, lr) << size;
  }
}

TEST(ImageNet64Presets, Edm2SPretraining) {
  const auto root = in64_preset("imagenet64-edm2-s");
  const auto train = onestep::TrainConfig::from_config(root);
  EXPECT_EQ(train.steps * train.batch, int64_t{1024} << 20);
  EXPECT_EQ(train.phema_snapshot_every * train.batch, int64_t{8} << 20);
  // Ramp-up over 10 Mimg, then 1 / sqrt(images / (35000 x 2048)).
  EXPECT_DOUBLE_EQ(train.lr_factor(0, 5000000), 0.5);
  EXPECT_NEAR(train.lr_factor(0, 4 * 35000 * 2048), 0.5, 1e-12);
  ASSERT_EQ(train.ema_rules().size(), 2u);
  EXPECT_EQ(train.ema_rules()[0].name(), "phema0.05");
}

// iCT on ImageNet-64 (methods.md section 15): the iCT method on the release's ADM; iCT-deep doubles the res blocks.
TEST(ImageNet64Presets, IctOnAdm) {
  for (const auto& [name, blocks] : {std::pair<std::string, int64_t>{"imagenet64-ict", 3}, {"imagenet64-ict-deep", 6}}) {
    const auto root = in64_preset(name);
    const auto train = onestep::TrainConfig::from_config(root);
    EXPECT_EQ(train.steps, 800000) << name;
    EXPECT_EQ(train.batch, 4096) << name;
    EXPECT_EQ(train.optimizer, onestep::OptimizerKind::Adam) << name;
    EXPECT_DOUBLE_EQ(train.lr, 1e-4) << name;
    ASSERT_EQ(train.ema_rules().size(), 1u);
    EXPECT_EQ(train.ema_rules()[0].name(), "0.99997") << name;
    onestep::MetaInit meta;
    onestep::Denoiser model = onestep::build_model(root);
    EXPECT_EQ(model->model_config()["arch"], "adm") << name;
    EXPECT_EQ(model->model_config()["num_res_blocks"], blocks) << name;
    EXPECT_EQ(model->model_config()["dropout"], 0.2) << name;
    EXPECT_EQ(model->precond().sample_scalings, onestep::Scalings::Consistency);
    const auto objective = onestep::build_objective(root, model)->to_json();
    EXPECT_EQ(objective["s0"], 10) << name;
    EXPECT_EQ(objective["s1"], 1280) << name;
    // c = 0.00054 sqrt(d), d = 3 x 64 x 64 (iCT section 3.3): 0.0599.
    EXPECT_NEAR(objective["huber_c"].get<double>(), 0.00054 * std::sqrt(3.0 * 64 * 64), 1e-12) << name;
    EXPECT_EQ(onestep::SamplerConfig::from_config(root).sigmas, (std::vector<double>{80.0, 1.526}));
  }
}

}  // namespace
