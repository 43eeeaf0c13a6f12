// `onestep train` through the real executable: errors are one line and exit 1; a tiny run trains and resumes.
#include "io/tensorboard.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/image_io.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "precond/model.h"
#include "run_onestep.h"
#include "test_device.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {
using Result = onestep::testing::CommandResult;
using onestep::testing::run;

struct TempDir {
  fs::path path;
  TempDir() : path(fs::temp_directory_path() / ("onestep-train-cli-" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Self-contained (no preset include): a tiny EDM run on 2-D points.
std::string write_config(const fs::path& dir) {
  const fs::path file = dir / "tiny.toml";
  std::ofstream(file) << "[model]\narch = \"mlp\"\nin_dim = 2\nhidden = 16\nnum_layers = 2\nnoise_channels = 8\n"
                         "dropout = 0.1\n[precond]\ntrain_scalings = \"edm\"\nsample_scalings = \"edm\"\n"
                         "[data]\ndataset = \"eight-gaussians\"\nnum_points = 1000\n[objective]\nmethod = \"edm\"\n"
                         "[train]\nsteps = 3\nbatch = 16\noptimizer = \"adam\"\nlr = 1e-3\nema = [0.9]\n"
                         "checkpoint_every = 2\nsample_count = 16\nlog_every = 1\ndevice = \"" +
                             onestep::testing::test_device_name() + "\"\n"
                         "[sample]\nkind = \"euler\"\nsteps = 4\n";
  return file.string();
}
}  // namespace

TEST(TrainCommand, UnknownKeyIsRejectedBeforeAnythingIsWritten) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  Result r = run("train --config " + config + " --set train.stepz=3 --run " + (tmp.path / "run").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("stepz"));
  EXPECT_FALSE(fs::exists(tmp.path / "run"));
  r = run("train --config " + config + " --set bogus.key=1 --run " + (tmp.path / "run").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("bogus"));
}

TEST(TrainCommand, ExistingRunNeedsResumeOrForce) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  fs::create_directories(tmp.path / "run");
  std::ofstream(tmp.path / "run" / "metrics.jsonl") << "{}\n";
  Result r = run("train --config " + config + " --run " + (tmp.path / "run").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("onestep: error:"));
}

TEST(TrainCommand, ResumeOfMissingRunFails) {
  TempDir tmp;
  Result r = run("train --resume --run " + (tmp.path / "nope").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("does not exist"));
}

TEST(TrainCommand, TinyRunTrainsResumesAndExportsTheEma) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const auto run_dir = tmp.path / "run";
  Result r = run("train --config " + config + " --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(run_dir / "config.toml"));
  EXPECT_TRUE(fs::exists(run_dir / "model.safetensors"));
  EXPECT_TRUE(fs::exists(run_dir / "checkpoints" / "ckpt-00000003.safetensors"));
  // The model file says which weights it holds (sample --weights raw on it is refused).
  EXPECT_EQ(onestep::read_safetensors_metadata(run_dir / "model.safetensors").at("onestep_weights"), "0.9");
  EXPECT_FALSE(fs::exists(run_dir / "lock"));  // released at exit
  r = run("train --resume --steps 5 --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("at step 3"));
  EXPECT_TRUE(fs::exists(run_dir / "checkpoints" / "ckpt-00000005.safetensors"));
  // One TensorBoard event file per session (tools/check_tensorboard_events.py reads them with TensorBoard).
  int event_files = 0;
  for (const auto& entry : fs::directory_iterator(run_dir))
    event_files += entry.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_EQ(event_files, onestep::tensorboard_available() ? 2 : 0);
  r = run("runs " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("steps: 5 of 5 (100%)"));
  EXPECT_THAT(r.output, HasSubstr(" in 2 sessions"));
  EXPECT_THAT(r.output, HasSubstr("ckpt-00000005.safetensors (latest)"));
  // --init with a mismatched architecture is a clear error.
  r = run("train --config " + config + " --set model.hidden=32 --init " + (run_dir / "model.safetensors").string() +
          " --run " + (tmp.path / "other").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("architectures differ"));
}

// The trainer's evaluation hook through the CLI, then `onestep eval` on the same 2-D model (SWD path).
TEST(TrainCommand, PeriodicEvaluationGoesIntoTheMetricsLog) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const auto run_dir = tmp.path / "run";
  Result r = run("train --config " + config + " --set eval.every=2 --set eval.metric=swd --set eval.n=300" +
                 " --set eval.steps=[4] --set train.steps=4 --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream metrics(run_dir / "metrics.jsonl");
  std::string line;
  int evaluations = 0;
  while (std::getline(metrics, line))
    if (line.find("\"swd_4step\":") != std::string::npos) ++evaluations;
  EXPECT_EQ(evaluations, 2);  // steps 2 and 4
  EXPECT_THAT(r.output, HasSubstr("eval step 2 4-step generate 300/300 points"));  // the evaluation's progress

  const std::string model = (run_dir / "model.safetensors").string();
  r = run("eval --config " + config + " --ckpt " + model + " --metric swd --steps 4 --n 300 --seeds 2");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("SWD floor (two fresh draws of 300 points)"));
  EXPECT_THAT(r.output, HasSubstr("4-step SWD (n = 300, 2 seeds)"));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("4-step SWD .*x floor"));
  // A wrong step count for the sampler fails before any sampling.
  r = run("eval --config " + config + " --ckpt " + model + " --metric swd --steps 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("2 or more steps"));
  // An image metric on a points model is refused with a clear message.
  r = run("eval --config " + config + " --ckpt " + model + " --metric swd --steps 4 --n 300 --pr");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, HasSubstr("--pr is for image metrics"));
}

// Original CT with its EMA teacher once crashed in the first backward pass ("modified by an inplace
// operation"). The trained model records its method, which the sampler's re-noising follows.
TEST(TrainCommand, OriginalCtWithItsEmaTeacherTrainsAndRecordsItsMethod) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const auto run_dir = tmp.path / "run";
  Result r = run("train --config " + config + " --set objective.method=ct --set objective.mu0=0.95 --run " +
                 run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(onestep::load_model(run_dir / "model.safetensors")->trained_with(), "ct");
  EXPECT_EQ(onestep::load_model(run_dir / "checkpoints" / "latest")->trained_with(), "ct");
  r = run("train --resume --steps 4 --run " + run_dir.string());  // the effective config reads back
  ASSERT_EQ(r.status, 0) << r.output;
  // The command line that crashed: an iCT preset switched to method = "ct" keeps iCT's curriculum, which "ct" refuses.
  r = run("train --config points-ict --set objective.method=ct --set objective.teacher=ema --steps 5 --run " +
          (tmp.path / "mixed").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("objective.curriculum = \"doubling\" is not the original CT's"));
}

// --init from a checkpoint with EDM's augmentation mapping (as EDM's public CIFAR-10 one) trains, with a
// one-line note of what was dropped; another architecture is refused, naming the tensors.
TEST(TrainCommand, InitDropsTheAugmentationMappingWithANote) {
  TempDir tmp;
  const fs::path config = tmp.path / "unet.toml";
  std::ofstream(config) << "[model]\narch = \"songunet\"\nvariant = \"ddpmpp\"\nimg_resolution = 8\nimg_channels = 1\n"
                           "model_channels = 8\nchannel_mult = [1, 2]\nnum_blocks = 1\nattn_resolutions = [4]\n"
                           "[precond]\ntrain_scalings = \"edm\"\nsample_scalings = \"consistency\"\n"
                           "[data]\ndataset = \"fashion-mnist\"\nresolution = 8\nresize = \"resize\"\nsubset = 64\n"
                           "[objective]\nmethod = \"ect\"\n[train]\nsteps = 1\nbatch = 4\nema = [0.9]\n"
                           "sample_every = -1\nlog_every = 1\ndevice = \"" +
                               onestep::testing::test_device_name() + "\"\n";
  onestep::Json edm_config{{"model",
                            {{"arch", "songunet"}, {"variant", "ddpmpp"}, {"img_resolution", 8}, {"img_channels", 1},
                             {"model_channels", 8}, {"channel_mult", {1, 2}}, {"num_blocks", 1},
                             {"attn_resolutions", {4}}, {"augment_dim", 9}}},
                           {"precond", {{"train_scalings", "edm"}, {"sample_scalings", "edm"}}}};
  auto edm = onestep::build_model(edm_config);
  const fs::path checkpoint = tmp.path / "edm-augment.safetensors";
  onestep::save_model(checkpoint, edm);
  Result r = run("train --config " + config.string() + " --init " + checkpoint.string() + " --run " +
                 (tmp.path / "ect").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("note: --init " + checkpoint.string() + ": dropped model.map_augment.weight ["));
  r = run("train --config " + config.string() + " --set model.model_channels=16 --init " + checkpoint.string() +
          " --run " + (tmp.path / "other").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("shapes differ (checkpoint vs configured): 'model."));
}

// A new run that fails before its first step (model and data disagree, a batch larger than the
// data) leaves no directory behind, so the corrected command needs no --force.
TEST(TrainCommand, FailureBeforeTheFirstStepLeavesNoRunDirectory) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const fs::path dir = tmp.path / "run";
  for (const std::string set : {"model.in_dim=3", "train.batch=5000"}) {
    Result r = run("train --config " + config + " --set " + set + " --run " + dir.string());
    EXPECT_EQ(r.status, 1) << set << ": " << r.output;
    EXPECT_FALSE(fs::exists(dir)) << set << ": " << r.output;
  }
}

// Labels for an unconditional model are an error, not silently ignored; a non-finite float says
// so as a number.
TEST(TrainCommand, LabelsWithoutLabelDimAndNonFiniteFloatsAreNamed) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const fs::path dir = tmp.path / "run";
  Result r = run("train --config " + config + " --set data.labels=true --run " + dir.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("data.labels=true but dataset eight-gaussians"));
  r = run("train --config " + config + " --set train.lr=inf --run " + dir.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("train.lr must be finite, got inf"));
  EXPECT_FALSE(fs::exists(dir));
}

// Points given as the user has them (far from the origin, spread about 3): training scales them to sigma_data,
// the model file holds the map, and samples and SWD come back in the user's units.
TEST(TrainCommand, RawPointsAreScaledAndSamplesReturnInTheirUnits) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  // The corners (98 | 102, 46 | 54), 50 times each: mean (100, 50), population variances (4, 16), mean 10,
  // so the isotropic scale is 0.5 / sqrt(10) = 0.158113883008419.
  const torch::Tensor corners = torch::tensor({98.0f, 46.0f, 102.0f, 46.0f, 98.0f, 54.0f, 102.0f, 54.0f});
  const auto data = (tmp.path / "raw.npy").string();
  onestep::write_npy(data, corners.reshape({4, 2}).repeat({50, 1}));
  const auto run_dir = tmp.path / "run";
  const std::string points = " --set data.dataset=points --set data.path=" + data;
  Result r = run("train --config " + config + points + " --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("points scaled for training (data.normalize = isotropic)"));
  const auto model_file = (run_dir / "model.safetensors").string();
  const auto model = onestep::load_model(model_file);
  ASSERT_EQ(model->point_scaling().mean.size(), 2u);
  EXPECT_NEAR(model->point_scaling().mean[0], 100.0, 1e-9);
  EXPECT_NEAR(model->point_scaling().mean[1], 50.0, 1e-9);
  EXPECT_NEAR(model->point_scaling().scale[0], 0.158113883008419, 1e-9);
  EXPECT_NEAR(model->point_scaling().scale[1], 0.158113883008419, 1e-9);
  // Barely trained, D is close to c_skip x, so samples sit around the model's origin: the data mean in user units
  // (without the map back they would sit at (0, 0)).
  r = run("sample --ckpt " + model_file + " --sampler euler --steps 4 --n 400 --out " +
          (tmp.path / "s.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const torch::Tensor samples = onestep::read_npy(tmp.path / "s.npy");
  EXPECT_NEAR(samples.select(1, 0).mean().item<float>(), 100.0f, 1.0f);
  EXPECT_NEAR(samples.select(1, 1).mean().item<float>(), 50.0f, 1.0f);
  r = run("eval --config " + config + points + " --ckpt " + model_file + " --metric swd --steps 4 --n 400 --ref " +
          data);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string key = "4-step SWD (n = 400, 1 seeds): ";
  const auto at = r.output.find(key);
  ASSERT_NE(at, std::string::npos) << r.output;
  EXPECT_LT(std::stod(r.output.substr(at + key.size())), 10.0) << r.output;  // about 110 in the wrong units
  // Without --config, eval scores the model as its run recorded it: the same [data] (these raw points), [sample]
  // and [eval], so the same number.
  Result recorded = run("eval --ckpt " + model_file + " --metric swd --steps 4 --n 400 --ref " + data);
  ASSERT_EQ(recorded.status, 0) << recorded.output;
  EXPECT_THAT(recorded.output, HasSubstr("as recorded with " + model_file));
  ASSERT_NE(recorded.output.find(key), std::string::npos) << recorded.output;
  EXPECT_EQ(recorded.output.substr(recorded.output.find(key)), r.output.substr(at)) << recorded.output;
  // The reference set can be written out, as points and as a density image in the model's window.
  r = run("eval --config " + config + points + " --ckpt " + model_file + " --metric swd --steps 4 --n 400 --ref " +
          data + " --write-ref " + (tmp.path / "ref.npy").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(onestep::read_npy(tmp.path / "ref.npy").equal(onestep::read_npy(data)));
  r = run("eval --config " + config + points + " --ckpt " + model_file + " --metric swd --steps 4 --n 400 --ref " +
          data + " --write-ref " + (tmp.path / "ref.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp.path / "ref.png"));
  EXPECT_THAT(run("info --ckpt " + model_file).output, HasSubstr("points: model = (x - (100, 50))"));
  // Resuming checks that the data still gives the same map; --init that the teacher saw the same map.
  r = run("train --resume --steps 4 --run " + run_dir.string());
  EXPECT_EQ(r.status, 0) << r.output;
  r = run("train --config " + config + points + " --set data.normalize=none --init " + model_file + " --run " +
          (tmp.path / "other").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--init"));
  EXPECT_THAT(r.output, HasSubstr("scaled as"));
}

// train.cpu_wait = "sleep" re-executes the process once with OMP_WAIT_POLICY=passive and trains; a wait policy the
// user set in the environment is kept as it is (core/cpu_wait.h).
TEST(TrainCommand, CpuWaitSleepReexecutesOnceAndTrainsSamplesEvaluates) {
  if (onestep::testing::test_device_name() != "cpu") GTEST_SKIP() << "CPU wait policy";
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const std::string sleep = " --set train.threads=2 --set train.cpu_wait=sleep --run ";
  Result r = run("train --config " + config + sleep + (tmp.path / "run").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(tmp.path / "run" / "model.safetensors"));
  size_t notes = 0;
  for (size_t at = r.output.find("OMP_WAIT_POLICY=passive"); at != std::string::npos;
       at = r.output.find("OMP_WAIT_POLICY=passive", at + 1))
    ++notes;
  EXPECT_EQ(notes, 1u) << r.output;
  ::setenv("OMP_WAIT_POLICY", "active", 1);
  r = run("train --config " + config + sleep + (tmp.path / "run2").string());
  ::unsetenv("OMP_WAIT_POLICY");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("OMP_WAIT_POLICY=passive")));
  r = run("train --config " + config + " --set train.cpu_wait=busy --run " + (tmp.path / "run3").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cpu_wait"));

  // sample and eval take the same policy as --cpu-wait: re-executed once with it, the same numbers as spinning.
  const auto count_notes = [](const std::string& text) {
    size_t n = 0;
    for (size_t at = text.find("--cpu-wait = sleep"); at != std::string::npos; at = text.find("--cpu-wait = sleep", at + 1))
      ++n;
    return n;
  };
  const std::string model = (tmp.path / "run" / "model.safetensors").string();
  ::setenv("OMP_NUM_THREADS", "2", 1);  // more than one OpenMP thread, whatever the machine's cores
  // (Euler, 4 levels: the [sample] section the run recorded with its model.)
  Result slept = run("sample --ckpt " + model + " --n 10 --steps 4 --cpu-wait sleep --out " + (tmp.path / "a.npy").string());
  Result spun = run("sample --ckpt " + model + " --n 10 --steps 4 --cpu-wait spin --out " + (tmp.path / "b.npy").string());
  const std::string eval = "eval --config " + config + " --ckpt " + model + " --metric swd --steps 4 --n 300 --cpu-wait ";
  Result eval_slept = run(eval + "sleep");
  Result eval_spun = run(eval + "spin");
  Result bad = run("sample --ckpt " + model + " --n 10 --steps 4 --cpu-wait busy --out " + (tmp.path / "c.npy").string());
  ::unsetenv("OMP_NUM_THREADS");
  ASSERT_EQ(slept.status, 0) << slept.output;
  ASSERT_EQ(spun.status, 0) << spun.output;
  EXPECT_EQ(count_notes(slept.output), 1u) << slept.output;
  EXPECT_EQ(count_notes(spun.output), 0u) << spun.output;
  EXPECT_TRUE(torch::equal(onestep::read_npy(tmp.path / "a.npy"), onestep::read_npy(tmp.path / "b.npy")));
  ASSERT_EQ(eval_slept.status, 0) << eval_slept.output;
  ASSERT_EQ(eval_spun.status, 0) << eval_spun.output;
  EXPECT_EQ(count_notes(eval_slept.output), 1u) << eval_slept.output;
  const auto summary = [](const std::string& text) { return text.substr(text.find("4-step SWD (n = ")); };
  ASSERT_NE(eval_slept.output.find("4-step SWD (n = "), std::string::npos) << eval_slept.output;
  ASSERT_NE(eval_spun.output.find("4-step SWD (n = "), std::string::npos) << eval_spun.output;
  EXPECT_EQ(summary(eval_slept.output), summary(eval_spun.output));
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output, HasSubstr("--cpu-wait"));
}

// Through the CLI: labels from class folders are recorded in the run's config.toml, and a resume
// whose folders name other classes is refused (label k would change meaning).
TEST(TrainCommand, ResumeRefusesClassFoldersThatChangedNames) {
  TempDir tmp;
  const fs::path images = tmp.path / "images";
  for (const char* name : {"cat/a.png", "cat/b.png", "dog/c.png", "dog/d.png"})
    onestep::write_png(images / name, torch::full({1, 8, 8}, 40, torch::kUInt8));
  const fs::path config = tmp.path / "folder.toml";
  std::ofstream(config) << "[model]\narch = \"songunet\"\nimg_resolution = 8\nimg_channels = 1\nlabel_dim = 2\n"
                           "model_channels = 8\nchannel_mult = [1]\nnum_blocks = 1\nattn_resolutions = []\n"
                           "[precond]\ntrain_scalings = \"edm\"\nsample_scalings = \"edm\"\n"
                           "[data]\ndataset = \"folder\"\npath = \"" + images.string() + "\"\nlabels = true\n"
                           "[objective]\nmethod = \"edm\"\n"
                           "[train]\nsteps = 1\nbatch = 2\nsample_every = -1\nlog_every = 1\ndevice = \"" +
                               onestep::testing::test_device_name() + "\"\n[sample]\nkind = \"euler\"\nsteps = 2\n";
  const fs::path run_dir = tmp.path / "run";
  Result r = run("train --config " + config.string() + " --run " + run_dir.string());
  ASSERT_EQ(r.status, 0) << r.output;
  std::stringstream recorded;
  recorded << std::ifstream(run_dir / "config.toml").rdbuf();
  EXPECT_THAT(recorded.str(), HasSubstr("class_names = [ 'cat', 'dog' ]")) << recorded.str();
  fs::rename(images / "dog", images / "fox");
  r = run("train --resume --steps 2 --run " + run_dir.string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("data.class_names [cat, dog] differ from the classes"));
  fs::rename(images / "fox", images / "dog");
  r = run("train --resume --steps 2 --run " + run_dir.string());
  EXPECT_EQ(r.status, 0) << r.output;
}

// Sizes past their bound (config/bounds.h) and negative seeds or Huber constants are one line naming the key,
// before anything is written: threads ran libgomp out of memory, wrapped or hung; layers ran memory out.
TEST(TrainCommand, ValuesPastTheirBoundAreNamedBeforeAnythingIsWritten) {
  TempDir tmp;
  const auto config = write_config(tmp.path);
  const std::string run_dir = (tmp.path / "run").string();
  for (const std::string assignment : {"train.threads=99999999999", "train.threads=2147483648",
                                       "train.threads=100000", "model.num_layers=99999999999", "eval.seed=-1"}) {
    Result r = run("train --config " + config + " --set " + assignment + " --run " + run_dir);
    EXPECT_EQ(r.status, 1) << r.output;
    const std::string key = assignment.substr(0, assignment.find('='));
    EXPECT_THAT(r.output, HasSubstr("onestep: error: config: " + key + " = " + assignment.substr(key.size() + 1) +
                                    " is out of range"));
    EXPECT_FALSE(fs::exists(run_dir));
  }
  Result r = run("train --config points-ict --set objective.huber_c=-1 --run " + run_dir);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("onestep: error: config: objective.huber_c = -1 is out of range"));
  r = run("train --config " + config + " --set train.steps=nan --run " + run_dir);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("train.steps must be an integer, got a number nan"));
}
