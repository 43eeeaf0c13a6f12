// `onestep sample` end to end on a tiny 2-D model and a tiny image model, through the real executable.
#include "io/npy.h"
#include "precond/model.h"

#include "io/image_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "run_onestep.h"

#include <array>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {
using Result = onestep::testing::CommandResult;
using onestep::testing::run_onestep;

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("onestep_sample_test_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

std::string save_points_model(const fs::path& dir) {
  onestep::Json root = {{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 16}, {"num_layers", 2}}},
                        {"precond", {{"sigma_min", 0.002}}}};
  onestep::Denoiser model = onestep::build_model(root);
  fs::path path = dir / "points.safetensors";
  onestep::save_model(path, model);
  return path.string();
}

std::string save_image_model(const fs::path& dir) {
  onestep::Json root = {{"model",
                         {{"arch", "songunet"}, {"img_resolution", 8}, {"img_channels", 1}, {"model_channels", 8},
                          {"channel_mult", {1, 2}}, {"num_blocks", 1}, {"attn_resolutions", {4}}}}};
  onestep::Denoiser model = onestep::build_model(root);
  fs::path path = dir / "image.safetensors";
  onestep::save_model(path, model);
  return path.string();
}
}  // namespace

TEST(SampleCommand, PointsToNpyAndDeterministic) {
  fs::path dir = temp_dir();
  const std::string ckpt = save_points_model(dir);
  Result a = run_onestep("sample --ckpt " + ckpt + " --n 10 --batch 4 --seed 3 --steps 2 --out " + (dir / "a.npy").string());
  ASSERT_EQ(a.status, 0) << a.output;
  Result b = run_onestep("sample --ckpt " + ckpt + " --n 10 --batch 4 --seed 3 --sigmas 80,0.821 --out " +
                         (dir / "b.npy").string());
  ASSERT_EQ(b.status, 0) << b.output;
  torch::Tensor xa = onestep::read_npy(dir / "a.npy"), xb = onestep::read_npy(dir / "b.npy");
  EXPECT_EQ(xa.sizes(), (std::vector<int64_t>{10, 2}));
  EXPECT_EQ(xa.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(xa, xb));
  // latents from a file
  onestep::write_npy(dir / "z.npy", torch::randn({6, 2}));
  Result c = run_onestep("sample --ckpt " + ckpt + " --latents " + (dir / "z.npy").string() + " --sampler heun --steps 4 --out " +
                         (dir / "c.npy").string());
  ASSERT_EQ(c.status, 0) << c.output;
  EXPECT_EQ(onestep::read_npy(dir / "c.npy").size(0), 6);
  fs::remove_all(dir);
}

TEST(SampleCommand, ImagesToPngGridNpzAndDirectory) {
  fs::path dir = temp_dir();
  const std::string ckpt = save_image_model(dir);
  Result grid = run_onestep("sample --ckpt " + ckpt + " --n 4 --out " + (dir / "grid.png").string());
  ASSERT_EQ(grid.status, 0) << grid.output;
  EXPECT_TRUE(fs::exists(dir / "grid.png"));
  // One batch: the closing progress line states the measured rate and the elapsed time (it said
  // "0 samples/s eta --:--").
  EXPECT_THAT(grid.output, HasSubstr("sample 4/4 samples "));
  EXPECT_THAT(grid.output, Not(HasSubstr(" 0 samples/s")));
  EXPECT_THAT(grid.output, Not(HasSubstr("eta --:--")));
  EXPECT_THAT(grid.output, ::testing::ContainsRegex("samples/s in [0-9.]+ s"));
  Result npz = run_onestep("sample --ckpt " + ckpt + " --n 3 --steps 2 --out " + (dir / "s.npz").string());
  ASSERT_EQ(npz.status, 0) << npz.output;
  auto arrays = onestep::read_npz(dir / "s.npz");
  ASSERT_TRUE(arrays.count("arr_0"));
  EXPECT_EQ(arrays["arr_0"].sizes(), (std::vector<int64_t>{3, 8, 8, 1}));
  EXPECT_EQ(arrays["arr_0"].scalar_type(), torch::kUInt8);
  Result pngs = run_onestep("sample --ckpt " + ckpt + " --n 2 --out " + (dir / "pngs").string());
  ASSERT_EQ(pngs.status, 0) << pngs.output;
  EXPECT_TRUE(fs::exists(dir / "pngs" / "000001.png"));
  fs::remove_all(dir);
}

TEST(SampleCommand, BadInputsGiveOneLineErrors) {
  fs::path dir = temp_dir();
  const std::string ckpt = save_points_model(dir);
  Result missing = run_onestep("sample --ckpt " + (dir / "nope.safetensors").string() + " --out x.npy");
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.output, HasSubstr("onestep: error:"));
  Result steps = run_onestep("sample --ckpt " + ckpt + " --steps 3 --out " + (dir / "x.npy").string());
  EXPECT_EQ(steps.status, 1);
  EXPECT_THAT(steps.output, HasSubstr("--sigmas"));
  Result npz = run_onestep("sample --ckpt " + ckpt + " --out " + (dir / "x.npz").string());
  EXPECT_EQ(npz.status, 1);
  EXPECT_THAT(npz.output, HasSubstr(".npy"));
  // 2-D points as a PNG are a density image.
  Result png = run_onestep("sample --ckpt " + ckpt + " --n 50 --out " + (dir / "x.png").string());
  EXPECT_EQ(png.status, 0) << png.output;
  EXPECT_EQ(onestep::read_image(dir / "x.png").sizes(), (std::vector<int64_t>{1, 256, 256}));
  Result sigmas = run_onestep("sample --ckpt " + ckpt + " --sigmas 80,abc --out " + (dir / "x.npy").string());
  EXPECT_EQ(sigmas.status, 1);
  onestep::write_npy(dir / "z.npy", torch::randn({6, 3}));
  Result latents = run_onestep("sample --ckpt " + ckpt + " --latents " + (dir / "z.npy").string() + " --out " +
                               (dir / "x.npy").string());
  EXPECT_EQ(latents.status, 1);
  EXPECT_THAT(latents.output, HasSubstr("latents"));
  fs::remove_all(dir);
}

// Messages say what is wrong.
TEST(SampleCommand, MessagesSayWhatIsWrong) {
  const fs::path dir = temp_dir() / "messages";
  fs::create_directories(dir);
  const std::string model = save_points_model(dir);
  const std::string out = (dir / "out.npy").string();
  Result r = run_onestep("sample --ckpt " + dir.string() + " --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("is a directory, not a model file"));
  r = run_onestep("sample --ckpt " + model + " --n -1 --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--n must be >= 1 (or omitted for the default), got -1"));
  r = run_onestep("sample --ckpt " + model + " --sigma-max nan --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sample.sigmas must be positive and finite, got nan"));
  r = run_onestep("sample --ckpt " + model + " --sampler rk4 --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sample: --sampler must be one of consistency, heun, euler (got 'rk4')"));
}

// A point model trained on scaled data (data.normalize) samples in the data's own units: the same weights with
// the map model = (x - (100, -50)) * (0.5, 0.25) give user = model / (0.5, 0.25) + (100, -50).
TEST(SampleCommand, PointsComeBackInTheDataUnits) {
  fs::path dir = temp_dir();
  onestep::Json root = {{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 16}, {"num_layers", 2}}}};
  torch::manual_seed(5);
  onestep::Denoiser model = onestep::build_model(root);
  for (auto& p : model->parameters()) p.data().normal_(0, 0.3);
  onestep::save_model(dir / "plain.safetensors", model);
  onestep::PointScaling scaling;
  scaling.mean = {100.0, -50.0};
  scaling.scale = {0.5, 0.25};
  model->set_point_scaling(scaling);
  onestep::save_model(dir / "scaled.safetensors", model);
  onestep::write_npy(dir / "z.npy", torch::randn({8, 2}));
  for (const char* name : {"plain", "scaled"}) {
    const std::string stem = (dir / name).string();
    Result r = run_onestep("sample --ckpt " + stem + ".safetensors --latents " + (dir / "z.npy").string() +
                           " --steps 2 --out " + stem + ".npy");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  const torch::Tensor plain = onestep::read_npy(dir / "plain.npy"), scaled = onestep::read_npy(dir / "scaled.npy");
  const torch::Tensor expected = torch::stack({plain.select(1, 0) / 0.5 + 100, plain.select(1, 1) / 0.25 - 50}, 1);
  EXPECT_TRUE(torch::allclose(scaled, expected, 1e-5, 1e-4)) << scaled << expected;
  fs::remove_all(dir);
}

// What the command line leaves open comes from the [sample] section that `onestep train` records with the model
// (metadata "onestep_config"): a model tuned to start at t = 5 samples from 5 without --sigma-max.
TEST(SampleCommand, RecordedSampleSectionIsTheDefault) {
  const fs::path dir = temp_dir() / "recorded";
  fs::create_directories(dir);
  onestep::Json root = {{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 16}, {"num_layers", 2}}},
                        {"precond", {{"sigma_min", 0.002}}}};
  onestep::Denoiser model = onestep::build_model(root);
  const auto save = [&](const std::string& name, const onestep::Json& sample) {
    const fs::path path = dir / name;
    std::map<std::string, std::string> metadata;
    if (!sample.is_null()) metadata["onestep_config"] = onestep::Json{{"sample", sample}, {"train", {}}}.dump();
    onestep::save_model(path, model, metadata);
    return path.string();
  };
  const std::string plain = save("plain.safetensors", nullptr);
  const std::string from5 = save("from5.safetensors", {{"kind", "consistency"}, {"sigma_max", 5.0}, {"sigmas", {5.0}}});
  const std::string heun6 = save("heun6.safetensors", {{"kind", "heun"}, {"steps", 6}});
  const auto draw = [&](const std::string& args, const std::string& name) {
    const fs::path out = dir / name;
    Result r = run_onestep("sample " + args + " --n 12 --seed 3 --out " + out.string());
    EXPECT_EQ(r.status, 0) << r.output;
    return std::make_pair(r.output, r.status == 0 ? onestep::read_npy(out) : torch::Tensor());
  };
  const auto [note5, recorded5] = draw("--ckpt " + from5, "a.npy");
  EXPECT_THAT(note5, HasSubstr("note: sampling consistency, sigmas 5 (what the command line leaves open"));
  EXPECT_TRUE(torch::equal(recorded5, draw("--ckpt " + plain + " --sigma-max 5", "b.npy").second));
  // Flags win; the plain file keeps the built-in defaults (1 step from 80) and prints no note.
  const auto [plain_note, plain80] = draw("--ckpt " + plain, "c.npy");
  EXPECT_THAT(plain_note, Not(HasSubstr("note: sampling")));
  EXPECT_TRUE(torch::equal(plain80, draw("--ckpt " + from5 + " --sigma-max 80", "d.npy").second));
  EXPECT_FALSE(torch::equal(recorded5, plain80));
  // --steps 2 starts at the recorded level and goes through 0.821 unless --sigma-mid says otherwise.
  EXPECT_TRUE(torch::equal(draw("--ckpt " + from5 + " --steps 2", "e.npy").second,
                           draw("--ckpt " + plain + " --sigmas 5,0.821", "f.npy").second));
  EXPECT_TRUE(torch::equal(draw("--ckpt " + from5 + " --steps 2 --sigma-mid 0.3", "g.npy").second,
                           draw("--ckpt " + plain + " --sigmas 5,0.3", "h.npy").second));
  // A recorded diffusion sampler: Heun with its levels; another kind on the command line takes its own defaults.
  const auto [heun_note, heun] = draw("--ckpt " + heun6, "i.npy");
  EXPECT_THAT(heun_note, HasSubstr("note: sampling heun, 6 levels from 80"));
  EXPECT_TRUE(torch::equal(heun, draw("--ckpt " + plain + " --sampler heun --steps 6", "j.npy").second));
  EXPECT_TRUE(torch::equal(draw("--ckpt " + heun6 + " --sampler consistency", "k.npy").second, plain80));
  // A broken record is named, in one line.
  const std::string bad = save("bad.safetensors", {{"kind", "bogus"}});
  Result r = run_onestep("sample --ckpt " + bad + " --out " + (dir / "x.npy").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("records an invalid [sample] section"));
  fs::remove_all(dir);
}

// `--n 0` wrote 64 samples, integer latents were read as noise, and `--weights raw` on a model file silently gave
// the EMA it holds: each is now a one-line error.
TEST(SampleCommand, ZeroCountIntegerLatentsAndRawWeightsOfAModelFileAreRefused) {
  const fs::path dir = temp_dir() / "refused";
  fs::create_directories(dir);
  const std::string model = save_points_model(dir);
  const std::string out = (dir / "out.npy").string();
  Result r = run_onestep("sample --ckpt " + model + " --n 0 --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("onestep: error: sample: --n must be >= 1 (or omitted for the default), got 0"));
  EXPECT_FALSE(fs::exists(out));

  onestep::write_npy(dir / "int.npy", torch::ones({4, 2}, torch::kInt64));
  r = run_onestep("sample --ckpt " + model + " --latents " + (dir / "int.npy").string() + " --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("hold Long values; --latents takes a float .npy (float32 or float64)"));

  // A model file that does not say which weights it holds, one with an EMA (as `onestep train` writes
  // model.safetensors), and one with the raw weights.
  r = run_onestep("sample --ckpt " + model + " --weights raw --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--weights raw, but this model file does not record which weights it holds"));
  onestep::Json root = {{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 16}, {"num_layers", 2}}}};
  onestep::Denoiser net = onestep::build_model(root);
  onestep::save_model(dir / "ema.safetensors", net, {{"onestep_weights", "0.999"}});
  r = run_onestep("sample --ckpt " + (dir / "ema.safetensors").string() + " --weights raw --out " + out);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("holds the EMA 0.999 weights only; drop --weights to use them, or take the raw "
                                  "weights from the run's checkpoint (--ckpt RUN/checkpoints/latest --weights raw)"));
  r = run_onestep("sample --ckpt " + (dir / "ema.safetensors").string() + " --n 3 --out " + out);
  EXPECT_EQ(r.status, 0) << r.output;
  onestep::save_model(dir / "raw.safetensors", net, {{"onestep_weights", "raw"}});
  r = run_onestep("sample --ckpt " + (dir / "raw.safetensors").string() + " --weights raw --n 3 --out " + out);
  EXPECT_EQ(r.status, 0) << r.output;
}
