// The shipped Fashion-MNIST diffusion teacher (assets/fmnist_edm_teacher.safetensors, assets/README.md) that
// scripts/demo.sh tunes with ECT: it loads, it is the network and preconditioning its preset says, the ECT preset
// can start from it, and it denoises.
#include "config/config.h"
#include "data/dataset.h"
#include "metrics/detector.h"
#include "precond/model.h"

#include <gtest/gtest.h>

namespace {

onestep::Json preset(const std::string& name) {
  onestep::Json root = onestep::load_config_file(onestep::resolve_preset(name));
  root.erase("base");
  return root;
}

std::filesystem::path teacher_path() { return onestep::assets_dir() / "fmnist_edm_teacher.safetensors"; }

TEST(FmnistTeacherAsset, IsTheArchitectureOfItsPreset) {
  auto teacher = onestep::load_model(teacher_path());
  auto configured = onestep::build_model(preset("fmnist-edm-cpu"));
  EXPECT_EQ(teacher->model_config(), configured->model_config());
  EXPECT_EQ(teacher->precond().to_json(), configured->precond().to_json());
  EXPECT_EQ(teacher->trained_with(), "edm");
  int64_t count = 0;
  for (const auto& p : teacher->parameters()) count += p.numel();
  EXPECT_EQ(count, 308545);  // `onestep info --config fmnist-edm-cpu`, the 0.31M-parameter UNet of unet-fmnist-cpu
  // Only the EMA weights are shipped: no raw weights, optimizer state or second EMA.
  EXPECT_LT(std::filesystem::file_size(teacher_path()), 2u * 1024 * 1024);
}

TEST(FmnistTeacherAsset, TheEctPresetStartsFromItWithNothingDropped) {
  auto teacher = onestep::load_model(teacher_path());
  auto student = onestep::build_model(preset("fmnist-ect-cpu"));
  std::vector<std::string> dropped;
  ASSERT_NO_THROW(dropped = onestep::copy_init_weights(student, teacher, "teacher"));
  EXPECT_TRUE(dropped.empty());
  // Same network; only the dropout rate differs: ECT tunes without the teacher's dropout (docs/fmnist-ablation.md).
  auto student_config = student->model_config();
  auto teacher_config = teacher->model_config();
  EXPECT_DOUBLE_EQ(student_config.at("dropout").get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(teacher_config.at("dropout").get<double>(), 0.1);
  student_config.erase("dropout");
  teacher_config.erase("dropout");
  EXPECT_EQ(student_config, teacher_config);
}

TEST(FmnistTeacherAsset, DenoisesTestImages) {
  // At sigma = 1 the network's share c_out F must remove most of the noise: an untrained network leaves about the
  // error of the skip path alone, sd^2 / (sigma^2 + sd^2) (x + sigma n), i.e. sigma^2 sd^2 / (sigma^2 + sd^2) = 0.2
  // per pixel plus the shrunk signal's error; the teacher must at least halve the skip path's error.
  torch::NoGradGuard no_grad;
  auto teacher = onestep::load_model(teacher_path());
  teacher->eval();
  onestep::DataConfig config;
  config.split = "test";
  const auto x = onestep::images_to_float(onestep::load_dataset(config).samples.slice(0, 0, 64));
  torch::manual_seed(0);
  const double sigma = 1.0, sd = 0.5;
  const auto noisy = x + sigma * torch::randn_like(x);
  const auto denoised = teacher->forward(noisy, torch::full({x.size(0)}, sigma), onestep::Scalings::Edm);
  const double teacher_mse = (denoised - x).pow(2).mean().item<double>();
  const double skip_mse = (sd * sd / (sigma * sigma + sd * sd) * noisy - x).pow(2).mean().item<double>();
  EXPECT_GT(skip_mse, 0.2);
  EXPECT_LT(teacher_mse, 0.5 * skip_mse) << "teacher " << teacher_mse << ", skip path alone " << skip_mse;
}

}  // namespace
