// The trainer's speed levers keep the numbers: train.channels_last, train.cudnn_benchmark, and the
// gradient norm's host synchronisation only at log steps.
#include "core/device.h"
#include "core/error.h"
#include "core/random.h"
#include "io/safetensors.h"
#include "objectives/objective_util.h"
#include "trainer/trainer.h"

#include <gtest/gtest.h>

#include <ATen/Context.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <tuple>
#include <unistd.h>

#include "test_device.h"

namespace fs = std::filesystem;
using onestep::Json;

namespace {

// A small DDPM++-shaped SongUNet on 8x8 images trained with the ECT objective: convolutions, GroupNorm,
// attention, up- and downsampling, the layouts that channels_last changes.
Json image_root(bool channels_last) {
  return Json{{"model",
               {{"arch", "songunet"},
                {"variant", "ddpmpp"},
                {"img_resolution", 8},
                {"img_channels", 3},
                {"model_channels", 8},
                {"channel_mult", {1, 2}},
                {"num_blocks", 1},
                {"attn_resolutions", {4}},
                {"dropout", 0.0}}},
              {"precond", {{"sigma_min", 0.002}, {"train_scalings", "edm"}}},
              {"objective", {{"method", "ect"}}},
              {"train",
               {{"steps", 3}, {"batch", 4}, {"lr", 1e-3}, {"ema", {0.9}}, {"checkpoint_every", 0},
                {"sample_every", -1}, {"log_every", 1}, {"channels_last", channels_last},
                {"device", onestep::testing::test_device_name()}}}};
}

std::shared_ptr<const onestep::Dataset> image_data() {
  auto data = std::make_shared<onestep::Dataset>();
  torch::manual_seed(11);
  data->samples = torch::randint(0, 256, {16, 3, 8, 8}, torch::kUInt8);
  data->name = "synthetic";
  return data;
}

fs::path levers_run_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("onestep-speed-levers-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

struct ImageRun {
  fs::path dir;
  std::unique_ptr<onestep::RunDir> run;
  std::unique_ptr<onestep::Trainer> trainer;
  ImageRun(const std::string& name, const Json& root) : dir(levers_run_dir(name)) {
    run = std::make_unique<onestep::RunDir>(dir, onestep::RunMode::New);
    run->write_config(root);
    torch::manual_seed(0);
    auto model = onestep::build_model(root);
    auto objective = onestep::build_objective(root, model);
    trainer = std::make_unique<onestep::Trainer>(*run, root, onestep::TrainConfig::from_config(root), std::nullopt,
                                                 model, std::move(objective), image_data());
    trainer->set_quiet(true);
  }
  ~ImageRun() { fs::remove_all(dir); }
};

std::vector<double> logged_losses(const fs::path& dir) {
  std::ifstream metrics(dir / "metrics.jsonl");
  std::string line;
  std::vector<double> losses;
  while (std::getline(metrics, line)) losses.push_back(Json::parse(line).at("loss").get<double>());
  return losses;
}

double max_relative_difference(onestep::Denoiser& a, onestep::Denoiser& b) {
  auto pb = b->named_parameters();
  double worst = 0;
  for (auto& item : a->named_parameters()) {
    const auto x = item.value().detach().cpu().to(torch::kFloat64), y = pb[item.key()].detach().cpu().to(torch::kFloat64);
    worst = std::max(worst, ((x - y).norm() / (y.norm() + 1e-12)).item<double>());
  }
  return worst;
}

}  // namespace

TEST(TrainerSpeedLevers, ChannelsLastTrainsTheSameWeightsAsTheDefaultLayout) {
  ImageRun nchw("nchw", image_root(false)), nhwc("nhwc", image_root(true));
  // The layout is what the key says: every 4-D weight of the model and of its EMA in NHWC.
  int64_t four_d = 0;
  for (auto& p : nhwc.trainer->model()->parameters()) {
    if (p.dim() != 4 || p.size(2) * p.size(3) == 1) continue;  // 1x1 kernels are both layouts at once
    ++four_d;
    EXPECT_TRUE(p.is_contiguous(at::MemoryFormat::ChannelsLast));
    EXPECT_FALSE(p.is_contiguous());
  }
  EXPECT_GT(four_d, 5);
  for (auto& p : nhwc.trainer->emas()[0].model()->parameters()) {
    if (p.dim() == 4) { EXPECT_TRUE(p.is_contiguous(at::MemoryFormat::ChannelsLast)); }
  }
  for (auto& p : nchw.trainer->model()->parameters()) EXPECT_TRUE(p.is_contiguous());

  ImageRun untrained("untrained", image_root(false));
  nchw.trainer->train(3);
  nhwc.trainer->train(3);
  // The same weights, noise and batches: the same losses up to fp32 summation order; a layout bug (weights or
  // images read transposed) changes the first loss by O(1).
  const auto losses_nchw = logged_losses(nchw.dir), losses_nhwc = logged_losses(nhwc.dir);
  ASSERT_EQ(losses_nchw.size(), 3u);
  ASSERT_EQ(losses_nhwc.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(losses_nhwc[i], losses_nchw[i], 1e-5 * std::abs(losses_nchw[i])) << i;
  // Three Adam steps: each moves a weight by about lr = 1e-3 whatever its gradient's size, so summation-order
  // noise can flip the sign of a near-zero gradient; the weights agree to well under one step's size.
  EXPECT_LT(max_relative_difference(nchw.trainer->model(), nhwc.trainer->model()), 1e-3);
  EXPECT_LT(max_relative_difference(nchw.trainer->emas()[0].model(), nhwc.trainer->emas()[0].model()), 1e-3);
  EXPECT_GT(max_relative_difference(untrained.trainer->model(), nchw.trainer->model()), 1e-2);  // it trained

  // Checkpoints stay NCHW: a channels_last run's checkpoint loads as a model of the default layout.
  auto loaded = onestep::load_model(nhwc.trainer->latest_checkpoint(), "raw");
  for (auto& p : loaded->parameters()) EXPECT_TRUE(p.is_contiguous());
  EXPECT_EQ(max_relative_difference(loaded, nhwc.trainer->model()), 0.0);
}

TEST(TrainerSpeedLevers, ChannelsLastResumesIntoAChannelsLastModel) {
  ImageRun first("resume-a", image_root(true));
  first.trainer->train(2);
  ImageRun second("resume-b", image_root(true));
  second.trainer->load_checkpoint(first.trainer->latest_checkpoint());
  EXPECT_EQ(max_relative_difference(first.trainer->model(), second.trainer->model()), 0.0);
  for (auto& p : second.trainer->model()->parameters()) {
    if (p.dim() == 4) { EXPECT_TRUE(p.is_contiguous(at::MemoryFormat::ChannelsLast)); }
  }
}

TEST(TrainerSpeedLevers, CudnnBenchmarkKeySetsTheFlagAndContradictsDeterministic) {
  Json root = image_root(false);
  root["train"]["cudnn_benchmark"] = true;
  // The process-wide flag is set by the one call every command makes (core/device.h), from the run's key.
  onestep::configure_process(onestep::TrainConfig::from_config(root).process_settings(0));
  EXPECT_TRUE(at::globalContext().benchmarkCuDNN());
  onestep::configure_process(onestep::TrainConfig::from_config(image_root(false)).process_settings(0));
  EXPECT_FALSE(at::globalContext().benchmarkCuDNN());
  root["train"]["deterministic"] = true;
  try {
    onestep::TrainConfig::from_config(root);
    FAIL() << "expected an error";
  } catch (const onestep::Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.cudnn_benchmark = true contradicts train.deterministic = true"),
              std::string::npos)
        << e.what();
  }
}

TEST(TrainerSpeedLevers, GradientNormIsLoggedAtLogStepsWithoutClipping) {
  Json root = image_root(false);
  root["train"]["steps"] = 5;
  root["train"]["log_every"] = 2;  // steps 2, 4 and the last, 5
  ImageRun r("grad-norm", root);
  r.trainer->train(5);
  std::ifstream metrics(r.dir / "metrics.jsonl");
  std::string line;
  std::vector<int64_t> steps;
  while (std::getline(metrics, line)) {
    const auto j = Json::parse(line);
    steps.push_back(j.at("step").get<int64_t>());
    EXPECT_GT(j.at("grad_norm").get<double>(), 0.0) << line;
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 5}));
}

TEST(TrainerSpeedLevers, BenchmarksCanTrainWithoutTheEndOfRunCheckpoint) {
  // onestep_train_bench times train(); the end-of-run checkpoint (892 MB for DDPM++) must not be in that time.
  ImageRun quiet("no-final-checkpoint", image_root(false));
  quiet.trainer->set_checkpoint_at_end(false);
  quiet.trainer->train(2);
  EXPECT_FALSE(fs::exists(quiet.run->checkpoints() / "latest"));
  ImageRun normal("final-checkpoint", image_root(false));
  normal.trainer->train(2);
  EXPECT_EQ(normal.trainer->latest_checkpoint().filename(), "ckpt-00000002.safetensors");
}

namespace {

// The ECT teacher on the rows with r > 0 only, with the student's kept dropout masks (objectives/objective_util.h),
// against the whole-batch teacher that draws its masks again from the rewound generator.
struct RowSubsetOff {
  RowSubsetOff() { onestep::set_consistency_target_row_subset(false); }
  ~RowSubsetOff() { onestep::set_consistency_target_row_subset(true); }
};

Json dropout_ect_root() {
  Json root = image_root(false);
  root["model"]["dropout"] = 0.1;
  root["train"]["batch"] = 8;
  root["train"]["device"] = "cpu";  // the row subset is a CPU path
  return root;
}

}  // namespace

TEST(TrainerSpeedLevers, EctTeacherOnTheRowsThatNeedItGivesTheSameLossAndGradients) {
  const Json root = dropout_ect_root();
  torch::manual_seed(0);
  auto model = onestep::build_model(root);
  model->train();
  auto objective = onestep::build_objective(root, model);
  torch::manual_seed(4);
  const onestep::Batch batch{torch::rand({8, 3, 8, 8}) * 2 - 1, {}};
  auto loss_and_gradients = [&](bool subset, int64_t images_seen) {
    std::optional<RowSubsetOff> off;
    if (!subset) off.emplace();
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    torch::manual_seed(8);  // the dropout masks
    auto generator = onestep::make_generator(torch::kCPU, 9);
    const auto out = objective->compute_loss(model, batch, {0, 100, images_seen}, generator);
    out.loss.backward();
    std::vector<torch::Tensor> grads;
    for (auto& p : model->parameters()) grads.push_back(p.grad().clone());
    const auto after = torch::rand({1});  // where each path leaves the dropout generator
    return std::tuple{out.loss.item<double>(), grads, out.stats, after};
  };
  // Stage 0 (81% of the rows at r = 0) and stage 1 (58%), where the subset differs from the batch.
  for (const int64_t images_seen : {int64_t{0}, int64_t{3200000}}) {
    const auto [loss, grads, stats, after] = loss_and_gradients(false, images_seen);
    const auto [loss2, grads2, stats2, after2] = loss_and_gradients(true, images_seen);
    const double zero = stats.at("frac_r_zero").get<double>();
    EXPECT_GT(zero, 0.0) << images_seen;
    EXPECT_LT(zero, 1.0) << images_seen;  // both kinds of rows in this batch
    EXPECT_NEAR(loss2, loss, 1e-6 * std::abs(loss)) << images_seen;
    ASSERT_EQ(grads.size(), grads2.size());
    for (size_t i = 0; i < grads.size(); ++i)
      EXPECT_TRUE(torch::allclose(grads2[i], grads[i], 1e-4, 1e-6)) << images_seen << " parameter " << i;
    EXPECT_TRUE(torch::equal(after, after2)) << images_seen;  // the stream continues where the student left it
  }
}

TEST(TrainerSpeedLevers, EctTeacherRowSubsetTrainsTheSameWeights) {
  const Json root = dropout_ect_root();
  auto run = [&](bool subset, const std::string& name) {
    std::optional<RowSubsetOff> off;
    if (!subset) off.emplace();
    auto r = std::make_unique<ImageRun>(name, root);
    torch::manual_seed(21);
    r->trainer->train(3);
    return r;
  };
  auto whole = run(false, "whole-teacher"), subset = run(true, "row-teacher");
  const auto losses = logged_losses(whole->dir), losses2 = logged_losses(subset->dir);
  ASSERT_EQ(losses.size(), 3u);
  ASSERT_EQ(losses2.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(losses2[i], losses[i], 1e-5 * std::abs(losses[i])) << i;
  // As for channels_last above: well under one Adam step (lr 1e-3) of difference.
  EXPECT_LT(max_relative_difference(whole->trainer->model(), subset->trainer->model()), 1e-4);
  EXPECT_LT(max_relative_difference(whole->trainer->emas()[0].model(), subset->trainer->emas()[0].model()), 1e-4);
}
