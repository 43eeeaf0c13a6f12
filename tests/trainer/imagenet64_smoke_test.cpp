// CPU evidence that the ImageNet-64 presets run end to end: each one, at a reduced width (8 base channels, one block
// per level) and otherwise as configured (64x64, labels, its objective, optimizer, LR decay, EMAs with power-function
// profiles and their snapshots), trains on synthetic labelled 64x64 images; a run interrupted at a checkpoint and
// resumed ends bitwise where a straight run ends; the EMA samples at 1 and 2 steps (the preset's sampler, class
// labels), the samples are scored against reference statistics written from the training data (the .npz that
// `onestep eval --ref` reads, features from the committed Fashion-MNIST classifier as a stand-in for Inception, whose
// weights CI does not have), and `onestep phema`'s reconstruction reads the snapshots the run wrote.
#include "config/config.h"
#include "metrics/detector.h"
#include "metrics/evaluation.h"
#include "metrics/frechet.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "samplers/sampler.h"
#include "samplers/sampling_job.h"
#include "trainer/phema.h"
#include "trainer/trainer.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "data/temp_dir.h"

#include <cmath>
#include <filesystem>

namespace {

using onestep::Json;

Json reduced(const std::string& name) {
  Json root = onestep::load_config_file(onestep::resolve_preset(name));
  root.erase("base");
  // ADM: GroupNorm(32) needs multiples of 32 channels; a third of the res blocks (1, iCT-deep 2); no 32x32 attention
  // (it tripled the test's time).
  if (root["model"]["arch"] == "adm")
    root["model"].update(Json{{"model_channels", 32}, {"num_res_blocks", root["model"]["num_res_blocks"].get<int>() / 3},
                              {"num_head_channels", 32}, {"attn_resolutions", {16, 8}}, {"label_dim", 10}});
  else
    root["model"].update(Json{{"model_channels", 8}, {"num_blocks", 1}, {"channels_per_head", 8}, {"label_dim", 10}});
  root["train"].update(Json{{"steps", 4}, {"batch", 4}, {"batch_per_gpu", 0}, {"checkpoint_every", 2},
                            {"sample_every", -1}, {"log_every", 1}, {"device", "cpu"}});
  if (root["train"].contains("ema_phema_std")) root["train"]["phema_snapshot_every"] = 2;
  if (root["train"].contains("lr_decay"))
    root["train"].update(Json{{"lr_decay_batches", 1}, {"warmup_mimg", 0.0}});
  if (root["objective"]["method"] == "ect") root["objective"]["stage_length"] = 8;  // two stages in 4 steps
  return root;
}

std::shared_ptr<const onestep::Dataset> synthetic_images() {
  auto data = std::make_shared<onestep::Dataset>();
  auto g = at::make_generator<at::CPUGeneratorImpl>(11);
  data->samples = torch::randint(0, 256, {12, 3, 64, 64}, g, torch::kUInt8);
  data->labels = torch::arange(12, torch::kInt64).remainder(10);
  data->num_classes = 10;
  data->name = "synthetic-64";
  return data;
}

struct SmokeRun {
  std::unique_ptr<onestep::RunDir> dir;
  std::unique_ptr<onestep::Trainer> trainer;
  SmokeRun(const std::filesystem::path& path, onestep::RunMode mode, const Json& root) {
    dir = std::make_unique<onestep::RunDir>(path, mode);
    if (mode == onestep::RunMode::New) dir->write_config(root);
    torch::manual_seed(0);
    auto model = onestep::build_model(root);
    trainer = std::make_unique<onestep::Trainer>(*dir, root, onestep::TrainConfig::from_config(root),
                                                 onestep::SamplerConfig::from_config(root), model,
                                                 onestep::build_objective(root, model), synthetic_images());
    trainer->set_quiet(true);
  }
};

void expect_same_parameters(onestep::Denoiser& a, onestep::Denoiser& b) {
  auto pb = b->named_parameters();
  for (auto& item : a->named_parameters()) EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
}

// The evaluation `onestep eval --ref` runs, at the smoke test's size: reference statistics of the training images
// written to an .npz and read back, then class-conditional samples at 1 and 2 steps (labels drawn per batch) scored
// by the Frechet distance to them. The data against its own statistics scores about 0, so a distance of the untrained
// model far above that is the evaluation working, not a constant.
void expect_fid_style_evaluation(onestep::Denoiser& model, onestep::SamplerConfig config,
                                 const std::filesystem::path& ref) {
  auto detector = onestep::load_detector("fd-fmnist", "", torch::kCPU);
  const auto images = synthetic_images()->samples;
  onestep::write_feature_stats(ref, onestep::image_feature_stats(*detector, images, 6));
  const auto reference = onestep::read_feature_stats(ref);
  // 12 images in a space of more dimensions: a singular covariance, so "0" is the matrix square root's round-off.
  const double self = onestep::frechet_distance(onestep::image_feature_stats(*detector, images, 6), reference);
  for (const auto& sigmas : {std::vector<double>{80.0}, std::vector<double>{80.0, 1.526}}) {
    config.sigmas = sigmas;
    const auto generated = onestep::generated_features(model, config, *detector, 8, 4, 0);
    EXPECT_EQ(generated.stats.count, 8);
    const double fd = onestep::frechet_distance(generated.stats, reference);
    EXPECT_TRUE(std::isfinite(fd) && fd > 100 * std::abs(self)) << sigmas.size() << " steps: " << fd << ", data "
                                                                   << self;
  }
}

class ImageNet64Smoke : public ::testing::TestWithParam<const char*> {};

TEST_P(ImageNet64Smoke, TrainsResumesSamplesAndReconstructs) {
  const Json root = reduced(GetParam());
  onestep::testing::TempDir straight_dir(std::string("in64_straight_") + GetParam());
  onestep::testing::TempDir resumed_dir(std::string("in64_resumed_") + GetParam());
  std::filesystem::remove_all(straight_dir.path);
  std::filesystem::remove_all(resumed_dir.path);
  SmokeRun straight(straight_dir.path, onestep::RunMode::New, root);
  auto initial = straight.trainer->model()->parameters().front().clone();
  straight.trainer->train(4);
  for (auto& p : straight.trainer->model()->parameters()) ASSERT_TRUE(torch::isfinite(p).all().item<bool>());
  EXPECT_FALSE(torch::equal(initial, straight.trainer->model()->parameters().front()));
  {
    SmokeRun first(resumed_dir.path, onestep::RunMode::New, root);
    first.trainer->train(2);
  }
  SmokeRun second(resumed_dir.path, onestep::RunMode::Resume, root);
  second.trainer->load_checkpoint(second.trainer->latest_checkpoint());
  second.trainer->train(4);
  expect_same_parameters(straight.trainer->model(), second.trainer->model());
  for (size_t i = 0; i < straight.trainer->emas().size(); ++i)
    expect_same_parameters(straight.trainer->emas()[i].model(), second.trainer->emas()[i].model());

  // 1 and 2 steps from the first EMA, class-conditional.
  auto& ema = straight.trainer->emas().front().model();
  const auto latents = torch::randn({2, 3, 64, 64});
  const auto labels = torch::tensor({3, 7}, torch::kInt64);
  auto config = onestep::SamplerConfig::from_config(
      Json{{"sample", {{"kind", "consistency"}, {"sigmas", {80.0, 1.526}}}}});
  for (const auto& sigmas : {std::vector<double>{80.0}, std::vector<double>{80.0, 1.526}}) {
    const size_t steps = sigmas.size();
    config.sigmas = sigmas;
    auto generator = onestep::batch_generator(0, 0);
    auto x = onestep::run_sampler(ema, config, latents, generator, labels);
    EXPECT_EQ(x.sizes(), latents.sizes());
    EXPECT_TRUE(torch::isfinite(x).all().item<bool>()) << steps << " steps";
  }
  expect_fid_style_evaluation(ema, config, straight_dir.path / "ref.npz");
  // The run's power-function snapshots (steps 2 and 4) reconstruct another profile.
  if (!root["train"].contains("ema_phema_std")) return;
  const auto snapshots = onestep::list_phema_snapshots(straight_dir.path / "phema");
  EXPECT_EQ(snapshots.size(), 2 * root["train"]["ema_phema_std"].size());
  auto rebuilt = onestep::reconstruct_phema(snapshots, 0.07, 0);
  for (auto& p : rebuilt->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(Presets, ImageNet64Smoke,
                         ::testing::Values("imagenet64-ect-s", "imagenet64-ect-m", "imagenet64-ect-l",
                                           "imagenet64-ect-xl", "imagenet64-edm2-s", "imagenet64-ict",
                                           "imagenet64-ict-deep"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
