#include "core/device.h"
#include "core/error.h"
#include "core/random.h"
#include "io/safetensors.h"
#include "trainer/trainer.h"

#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "test_device.h"

namespace fs = std::filesystem;
using onestep::Json;

namespace {

// A stand-in objective with EDM-like randomness: sigma and noise from the objective generator, dropout from
// the global generator, so that an exact resume needs both random states.
class ToyObjective : public onestep::Objective {
 public:
  int nan_after = -1;  // from this step on the loss is NaN
  std::string name() const override { return "toy"; }
  onestep::LossOutput compute_loss(onestep::Denoiser& model, const onestep::Batch& batch,
                                   const onestep::TrainProgress& progress, at::Generator& generator) override {
    // Per-sample draws for the whole (global) batch, this batch's rows kept, as the real objectives draw.
    const int64_t b = batch.global_batch();
    const auto device = batch.x.device();
    auto sigma = batch.own_rows(
        (onestep::random_normal({b}, generator, device, torch::kFloat32, "toy sigma") * 1.2 - 1.2).exp());
    auto noise =
        batch.own_rows(onestep::random_normal(batch.global_shape(), generator, device, torch::kFloat32, "toy noise"));
    auto d = model->forward(batch.x + sigma.view({-1, 1}) * noise, sigma, onestep::Scalings::Edm);
    auto loss = (d - batch.x).square().sum(1).mean();
    if (nan_after >= 0 && progress.step >= nan_after) loss = loss * std::nan("");
    return {loss, Json{{"toy_stat", progress.step}}};
  }
  Json to_json() const override { return Json{{"method", "toy"}}; }
};

Json toy_root() {
  return Json{{"model",
               {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 16}, {"num_layers", 2}, {"noise_channels", 8},
                {"dropout", 0.3}}},
              {"precond", {{"train_scalings", "edm"}}},
              {"train",
               {{"steps", 12}, {"batch", 8}, {"lr", 1e-2}, {"ema", {0.9}}, {"ema_halflife_mimg", {1e-5}},
                {"checkpoint_every", 3}, {"keep_checkpoints", 2}, {"log_every", 2}, {"device", onestep::testing::test_device_name()},
                {"warmup_steps", 3}, {"grad_clip", 1.0}}}};
}

std::shared_ptr<const onestep::Dataset> toy_data() {
  auto data = std::make_shared<onestep::Dataset>();
  auto g = at::make_generator<at::CPUGeneratorImpl>(7);
  data->samples = torch::randn({37, 2}, g) * 0.5;
  data->name = "toy";
  return data;
}

struct Fixture {
  fs::path dir;
  std::unique_ptr<onestep::RunDir> run;
  std::unique_ptr<onestep::Trainer> trainer;
  ToyObjective* objective = nullptr;
  Fixture(const fs::path& path, onestep::RunMode mode, const Json& root = toy_root()) : dir(path) {
    run = std::make_unique<onestep::RunDir>(dir, mode);
    if (mode == onestep::RunMode::New) run->write_config(root);
    torch::manual_seed(0);
    auto model = onestep::build_model(root);
    auto obj = std::make_unique<ToyObjective>();
    objective = obj.get();
    trainer = std::make_unique<onestep::Trainer>(*run, root, onestep::TrainConfig::from_config(root), std::nullopt,
                                                 model, std::move(obj), toy_data());
    trainer->set_quiet(true);
  }
};

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("onestep-trainer-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

void expect_same_weights(onestep::Denoiser& a, onestep::Denoiser& b) {
  auto pa = a->named_parameters();
  auto pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  // Models loaded from a checkpoint live on the CPU; the trainer's on the test device.
  for (auto& item : pa) EXPECT_TRUE(torch::equal(item.value().cpu(), pb[item.key()].cpu())) << item.key();
}

}  // namespace

// A run killed after 5 steps and resumed to 10 ends bitwise where a straight run of 10 ends.
void expect_resume_bitwise_identical(const Json& root) {
  const auto straight_dir = temp_dir("straight"), resumed_dir = temp_dir("resumed");
  Fixture straight(straight_dir, onestep::RunMode::New, root);
  straight.trainer->train(10);  // 2N steps, N = 5 (5 is between checkpoints: the end-of-run checkpoint is used)
  {
    Fixture first(resumed_dir, onestep::RunMode::New, root);
    first.trainer->train(5);
    // Disturb the global random states (dropout's, on the CPU and CUDA): the checkpoint must restore them.
    torch::randn({100});
    if (onestep::testing::testing_on_cuda()) torch::randn({100}, torch::Device(torch::kCUDA, 0));
  }
  Fixture second(resumed_dir, onestep::RunMode::Resume, root);
  second.trainer->load_checkpoint(second.trainer->latest_checkpoint());
  EXPECT_EQ(second.trainer->step(), 5);
  EXPECT_EQ(second.trainer->images_seen(), 40);
  second.trainer->train(10);
  expect_same_weights(straight.trainer->model(), second.trainer->model());
  for (size_t i = 0; i < 2; ++i)
    expect_same_weights(straight.trainer->emas()[i].model(), second.trainer->emas()[i].model());
  // The weights did move.
  Fixture fresh(temp_dir("fresh"), onestep::RunMode::New, root);
  EXPECT_FALSE(torch::equal(fresh.trainer->model()->parameters().front(),
                            straight.trainer->model()->parameters().front()));
  fs::remove_all(straight_dir);
  fs::remove_all(resumed_dir);
  fs::remove_all(fresh.dir);
}

TEST(Trainer, ResumeIsBitwiseIdenticalToStraightRun) { expect_resume_bitwise_identical(toy_root()); }

TEST(Trainer, ResumeWithGradientAccumulationIsBitwiseIdenticalToStraightRun) {
  // The batch of 8 as micro-batches of 3 + 3 + 2 (dropout 0.3: the masks come from the checkpointed generator).
  Json root = toy_root();
  root["train"]["batch_per_gpu"] = 3;
  expect_resume_bitwise_identical(root);
}

TEST(Trainer, CheckpointsKeepLastKAndLoadAsModels) {
  const auto dir = temp_dir("keep");
  Fixture f(dir, onestep::RunMode::New);
  f.trainer->train(12);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(f.run->checkpoints())) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"ckpt-00000009.safetensors", "ckpt-00000012.safetensors", "latest"}));
  EXPECT_EQ(f.trainer->latest_checkpoint().filename(), "ckpt-00000012.safetensors");
  // An EMA inside a training checkpoint loads as a model (load_model with the EMA's prefix).
  auto ema = onestep::load_model(f.trainer->latest_checkpoint(), "ema.0.9.");
  expect_same_weights(ema, f.trainer->emas()[0].model());
  // Weight sets by name; the default is the first EMA; the `latest` pointer file is followed.
  auto by_name = onestep::load_model(f.trainer->latest_checkpoint(), "0.9");
  expect_same_weights(by_name, f.trainer->emas()[0].model());
  auto by_default = onestep::load_model(f.run->checkpoints() / "latest");
  expect_same_weights(by_default, f.trainer->emas()[0].model());
  EXPECT_EQ(by_default->trained_with(), "toy");  // the objective, for the sampler's re-noising rule
  {
    const auto stale = dir / "stale" / "latest";  // a pointer naming a checkpoint that was removed
    fs::create_directories(stale.parent_path());
    std::ofstream(stale) << "ckpt-00000003.safetensors\n";
    try {
      onestep::load_model(stale);
      FAIL() << "expected an error";
    } catch (const onestep::Error& e) {
      EXPECT_NE(std::string(e.what()).find("names ckpt-00000003.safetensors, which does not exist"), std::string::npos)
          << e.what();
    }
  }
  auto raw = onestep::load_model(f.trainer->latest_checkpoint(), "raw");
  expect_same_weights(raw, f.trainer->model());
  auto second = onestep::load_model(f.trainer->latest_checkpoint(), "hl1e-05");
  expect_same_weights(second, f.trainer->emas()[1].model());
  try {
    onestep::load_model(f.trainer->latest_checkpoint(), "0.5");
    FAIL() << "expected an error";
  } catch (const onestep::Error& e) {
    EXPECT_NE(std::string(e.what()).find("holds: raw, 0.9, hl1e-05"), std::string::npos) << e.what();
  }
  auto content = onestep::load_safetensors(f.trainer->latest_checkpoint());
  EXPECT_NE(content.find("optim.step"), nullptr);
  EXPECT_NE(content.find("rng.cpu"), nullptr);
  EXPECT_NE(content.find("rng.objective"), nullptr);
  if (onestep::testing::testing_on_cuda()) {
    EXPECT_NE(content.find("rng.cuda"), nullptr);  // dropout's generator on CUDA
  }
  bool has_half_life_ema = false;
  for (const auto& [name, t] : content.tensors) has_half_life_ema = has_half_life_ema || name.rfind("ema.hl1e-05.", 0) == 0;
  EXPECT_TRUE(has_half_life_ema);
  // Metrics: one line per log_every steps.
  std::ifstream metrics(f.run->metrics_path());
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    auto j = Json::parse(line);
    EXPECT_TRUE(j.contains("loss") && j.contains("lr") && j.contains("grad_norm") && j.contains("toy_stat"));
    ++lines;
  }
  EXPECT_EQ(lines, 6);
  fs::remove_all(dir);
}

TEST(Trainer, RepeatedNonFiniteLossStopsWithLastGoodCheckpointIntact) {
  const auto dir = temp_dir("nan");
  Json root = toy_root();
  root["train"]["max_nonfinite"] = 3;
  Fixture f(dir, onestep::RunMode::New, root);
  f.objective->nan_after = 4;
  auto before = f.trainer->model()->parameters().front().clone();
  try {
    f.trainer->train(12);
    FAIL() << "expected an error";
  } catch (const onestep::Error& e) {
    EXPECT_NE(std::string(e.what()).find("3 consecutive non-finite losses"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ckpt-00000003.safetensors"), std::string::npos) << e.what();
  }
  EXPECT_EQ(f.trainer->step(), 4);  // the NaN steps were skipped
  EXPECT_EQ(f.trainer->latest_checkpoint().filename(), "ckpt-00000003.safetensors");
  fs::remove_all(dir);
}

TEST(Trainer, EvaluationHookSeesTheFirstEmaAndItsResultIsLogged) {
  const auto dir = temp_dir("eval-hook");
  Fixture f(dir, onestep::RunMode::New);
  std::vector<int64_t> calls;
  f.trainer->set_eval_hook(
      [&](onestep::Denoiser& model, int64_t step) {
        calls.push_back(step);
        // The hook gets the first EMA's weights, which differ from the raw weights after a step.
        auto& ema = f.trainer->emas().front().model();
        EXPECT_TRUE(torch::equal(model->parameters().front().cpu(), ema->parameters().front().cpu()));
        EXPECT_FALSE(torch::equal(model->parameters().front().cpu(), f.trainer->model()->parameters().front().cpu()));
        return Json{{"quality", 100.0 + static_cast<double>(step)}};
      },
      5);
  f.trainer->train(12);
  EXPECT_EQ(calls, (std::vector<int64_t>{5, 10}));
  std::ifstream metrics(dir / "metrics.jsonl");
  std::string line;
  std::vector<std::pair<int64_t, double>> logged;
  while (std::getline(metrics, line)) {
    const auto j = Json::parse(line);
    if (j.contains("quality")) logged.emplace_back(j["step"].get<int64_t>(), j["quality"].get<double>());
  }
  EXPECT_EQ(logged, (std::vector<std::pair<int64_t, double>>{{5, 105.0}, {10, 110.0}}));
  EXPECT_TRUE(f.trainer->model()->is_training());  // training goes on in train mode after an evaluation
  fs::remove_all(dir);
}

// The process settings of every combination of train.tf32 / train.deterministic / train.bf16 leave ATen's TF32
// state one that cuBLAS and cuDNN accept: allowTF32CuBLAS() and allowTF32CuDNN() (which cuBLAS calls for every
// handle, cuDNN for every convolution) throw on a mix of the legacy and per-operator precision fields.
TEST(ProcessSettings, Tf32StateIsOneThatCublasAndCudnnAcceptForEveryCombination) {
  for (const bool tf32 : {false, true})
    for (const bool deterministic : {false, true})
      for (const bool bf16 : {false, true}) {
        const Json root{{"train", {{"tf32", tf32}, {"deterministic", deterministic}, {"bf16", bf16},
                                   {"device", "cpu"}}}};
        const auto train = onestep::TrainConfig::from_config(root);
        const std::string where = "tf32 " + std::to_string(tf32) + ", deterministic " +
                                  std::to_string(deterministic) + ", bf16 " + std::to_string(bf16);
        EXPECT_TRUE(onestep::configure_process(train.process_settings(0)).is_cpu()) << where;
        bool cublas = !tf32, cudnn = !tf32;
        EXPECT_NO_THROW(cublas = at::globalContext().allowTF32CuBLAS()) << where;
        EXPECT_NO_THROW(cudnn = at::globalContext().allowTF32CuDNN()) << where;
        EXPECT_NO_THROW((void)at::globalContext().float32MatmulPrecision()) << where;
        EXPECT_EQ(cublas, tf32) << where;
        EXPECT_EQ(cudnn, tf32) << where;
        EXPECT_EQ(at::globalContext().allowTF32CuDNN(at::Float32Op::CONV), tf32) << where;
        EXPECT_EQ(at::globalContext().deterministicAlgorithms(), deterministic) << where;
      }
  onestep::set_cuda_math(false, false, false);
}

TEST(ProcessSettings, DeterministicKeySwitchesPyTorchsDeterministicModes) {
  EXPECT_FALSE(onestep::TrainConfig{}.deterministic);
  Json root = toy_root();
  root["train"]["deterministic"] = true;
  onestep::configure_process(onestep::TrainConfig::from_config(root).process_settings(0));
  EXPECT_TRUE(at::globalContext().deterministicCuDNN());
  EXPECT_FALSE(at::globalContext().benchmarkCuDNN());
  EXPECT_TRUE(at::globalContext().deterministicAlgorithms());
  EXPECT_TRUE(at::globalContext().deterministicAlgorithmsWarnOnly());
  const char* workspace = std::getenv("CUBLAS_WORKSPACE_CONFIG");
  ASSERT_NE(workspace, nullptr);
  root["train"]["deterministic"] = false;
  root["train"]["cudnn_benchmark"] = true;
  onestep::configure_process(onestep::TrainConfig::from_config(root).process_settings(0));
  EXPECT_FALSE(at::globalContext().deterministicAlgorithms());
  EXPECT_FALSE(at::globalContext().deterministicCuDNN());
  EXPECT_TRUE(at::globalContext().benchmarkCuDNN());
  onestep::set_cuda_math(false, false, false);
  EXPECT_FALSE(at::globalContext().benchmarkCuDNN());
}

TEST(Trainer, ResumeOfACudaRunRestoresTheCudaGeneratorStates) {
  ONESTEP_SKIP_WITHOUT_CUDA();
  // The bitwise resume test above covers this when ONESTEP_TEST_DEVICE=cuda; this one runs on CUDA whenever a
  // GPU is present, so a plain `ctest` on a GPU machine checks it too.
  Json root = toy_root();
  root["train"]["device"] = "cuda";
  const auto straight_dir = temp_dir("cuda-straight"), resumed_dir = temp_dir("cuda-resumed");
  Fixture straight(straight_dir, onestep::RunMode::New, root);
  straight.trainer->train(8);
  {
    Fixture first(resumed_dir, onestep::RunMode::New, root);
    first.trainer->train(4);
    torch::randn({100}, torch::Device(torch::kCUDA, 0));
  }
  Fixture second(resumed_dir, onestep::RunMode::Resume, root);
  second.trainer->load_checkpoint(second.trainer->latest_checkpoint());
  second.trainer->train(8);
  EXPECT_TRUE(second.trainer->model()->parameters().front().is_cuda());
  expect_same_weights(straight.trainer->model(), second.trainer->model());
  fs::remove_all(straight_dir);
  fs::remove_all(resumed_dir);
}

namespace {
// The third step's loss of the toy run on `device` with train.bf16 on or off (the first step's is c_skip x alone to
// float32 rounding: the output layer starts at 1e-5 of its scale, so its bf16 rounding does not reach the loss).
double toy_bf16_loss(const std::string& device, bool bf16, const std::string& name) {
  Json root = toy_root();
  root["train"]["device"] = device;
  root["train"]["bf16"] = bf16;
  root["train"]["log_every"] = 1;
  root["model"]["dropout"] = 0.0;
  Fixture f(temp_dir(name), onestep::RunMode::New, root);
  f.trainer->train(3);
  std::ifstream metrics(f.dir / "metrics.jsonl");
  std::string line, last;
  while (std::getline(metrics, line))
    if (!line.empty()) last = line;
  fs::remove_all(f.dir);
  return Json::parse(last).at("loss").get<double>();
}
}  // namespace

TEST(Trainer, Bf16AutocastStepStaysCloseToTheFp32StepOnCuda) {
  ONESTEP_SKIP_WITHOUT_CUDA();
  const double fp32 = toy_bf16_loss("cuda", false, "fp32"), bf16 = toy_bf16_loss("cuda", true, "bf16");
  // bf16 keeps 8 bits of mantissa: the same step's loss agrees to about 1%, and is not bit-identical.
  EXPECT_NEAR(bf16, fp32, 0.02 * std::abs(fp32));
  EXPECT_NE(bf16, fp32);
}

// On a CPU with native bf16 (AVX512-BF16 / AMX) train.bf16 autocasts as on CUDA; elsewhere it trains in fp32 (with a
// warning), bit-identical to the fp32 run.
TEST(Trainer, Bf16OnTheCpuAutocastsOnlyWhereTheCpuHasNativeBf16) {
  const double fp32 = toy_bf16_loss("cpu", false, "cpu_fp32"), bf16 = toy_bf16_loss("cpu", true, "cpu_bf16");
  if (onestep::cpu_has_native_bf16()) {
    EXPECT_NEAR(bf16, fp32, 0.02 * std::abs(fp32));
    EXPECT_NE(bf16, fp32);
  } else {
    EXPECT_EQ(bf16, fp32);
  }
}

TEST(Trainer, MissingCheckpointIsAClearError) {
  const auto dir = temp_dir("missing");
  Fixture f(dir, onestep::RunMode::New);
  EXPECT_THROW(f.trainer->latest_checkpoint(), onestep::Error);
  fs::remove_all(dir);
}

TEST(TrainConfig, RejectsUnknownKeysAndBadValues) {
  Json root = toy_root();
  root["train"]["stepz"] = 3;
  EXPECT_THROW(onestep::TrainConfig::from_config(root), onestep::Error);
  root = toy_root();
  root["train"]["betas"] = {0.9};
  EXPECT_THROW(onestep::TrainConfig::from_config(root), onestep::Error);
  root = toy_root();
  root["train"]["optimizer"] = "sgd";
  EXPECT_THROW(onestep::TrainConfig::from_config(root), onestep::Error);
  // Warm-up: EDM ramps with images seen before the step; steps ramp with (step + 1) / warmup_steps.
  onestep::TrainConfig c;
  c.warmup_mimg = 10;
  EXPECT_DOUBLE_EQ(c.lr_factor(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(c.lr_factor(0, 5000000), 0.5);
  EXPECT_DOUBLE_EQ(c.lr_factor(0, 20000000), 1.0);
  c.warmup_mimg = 0;
  c.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(c.lr_factor(0, 0), 0.25);
  EXPECT_DOUBLE_EQ(c.lr_factor(9, 0), 1.0);
}

TEST(TrainConfig, LrDecayCosineAndLinearToZeroAtTheLastStep) {
  onestep::TrainConfig c;
  c.steps = 100;
  EXPECT_DOUBLE_EQ(c.lr_factor(99, 0), 1.0);  // "none"
  c.lr_decay = onestep::LrDecay::Linear;
  c.lr_decay_start = 0.6;  // decay over steps 60..99, p = (step - 60) / 40
  EXPECT_DOUBLE_EQ(c.lr_factor(59, 0), 1.0);
  EXPECT_DOUBLE_EQ(c.lr_factor(60, 0), 1.0);
  EXPECT_DOUBLE_EQ(c.lr_factor(70, 0), 0.75);
  EXPECT_NEAR(c.lr_factor(99, 0), 0.025, 1e-15);
  c.lr_decay = onestep::LrDecay::Cosine;  // 0.5 (1 + cos(pi p)): p = 1/4 -> 0.853553..., p = 1/2 -> 0.5
  EXPECT_NEAR(c.lr_factor(70, 0), 0.8535533905932737, 1e-15);
  EXPECT_NEAR(c.lr_factor(80, 0), 0.5, 1e-15);
  EXPECT_NEAR(c.lr_factor(99, 0), 0.001541333133436018, 1e-15);  // p = 39/40
  c.warmup_steps = 200;                       // warm-up and decay multiply: 81/200 * 0.5 at step 80
  EXPECT_NEAR(c.lr_factor(80, 0), 0.2025, 1e-15);
  Json root = toy_root();
  root["train"]["lr_decay"] = "exp";
  EXPECT_THROW(onestep::TrainConfig::from_config(root), onestep::Error);
  root = toy_root();
  root["train"]["lr_decay_start"] = 1.0;
  EXPECT_THROW(onestep::TrainConfig::from_config(root), onestep::Error);
  root = toy_root();
  root["train"]["lr_decay"] = "cosine";
  root["train"]["lr_decay_start"] = 0.5;
  const auto parsed = onestep::TrainConfig::from_config(root);
  EXPECT_EQ(parsed.lr_decay, onestep::LrDecay::Cosine);
  EXPECT_DOUBLE_EQ(parsed.lr_decay_start, 0.5);
  EXPECT_EQ(parsed.to_json().at("lr_decay"), "cosine");
}
