// The sample-and-score pipeline of `onestep eval` on the test device (ONESTEP_TEST_DEVICE=cuda on a GPU, the CPU
// otherwise) against the same pipeline on the CPU: latents come from a CPU generator, so both see the same images.
#include "config/config.h"
#include "metrics/evaluation.h"
#include "metrics/fmnist_classifier.h"
#include "metrics/inception.h"
#include "precond/model.h"
#include "core/device.h"

#include <gtest/gtest.h>

#include "test_device.h"

namespace {

onestep::Denoiser small_unet() {
  torch::manual_seed(4);
  return onestep::build_model(onestep::load_config_file(onestep::resolve_preset("unet-fmnist-cpu")));
}

}  // namespace

TEST(EvaluationOnDevice, GeneratedFeatureStatisticsMatchTheCpuPipeline) {
  const torch::Device device = onestep::testing::test_device();
  onestep::set_cuda_tf32(false);
  const auto sampler = onestep::sampler_for_steps(onestep::Json::object(), 2, 0.821);
  torch::manual_seed(5);
  onestep::FmnistClassifier classifier;
  auto cpu_model = small_unet();
  auto cpu_detector = onestep::make_fmnist_detector(classifier, torch::kCPU);
  const auto expected = onestep::generated_features(cpu_model, sampler, *cpu_detector, 24, 10, 3, true);

  auto model = small_unet();
  model->to(device);
  auto detector = onestep::make_fmnist_detector(classifier, device);
  const auto got = onestep::generated_features(model, sampler, *detector, 24, 10, 3, true);
  EXPECT_EQ(got.stats.count, 24);
  const double tolerance = onestep::testing::device_tolerance(1e-6, 1e-3);
  EXPECT_TRUE(torch::allclose(got.features, expected.features, tolerance, tolerance))
      << (got.features - expected.features).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(got.stats.mu, expected.stats.mu, tolerance, tolerance));
  // Another seed gives other images: the comparison above is not comparing constants.
  const auto other = onestep::generated_features(model, sampler, *detector, 24, 10, 4, true);
  EXPECT_FALSE(torch::allclose(other.features, got.features, 1e-3, 1e-3));
}

TEST(EvaluationOnDevice, InceptionFeaturesOnCudaMatchTheCpu) {
  ONESTEP_SKIP_WITHOUT_CUDA();
  onestep::set_cuda_tf32(false);
  torch::manual_seed(6);
  onestep::InceptionV3 inception;
  const auto images = torch::randint(0, 256, {4, 3, 32, 32}, torch::kUInt8);
  // The detectors share the module: the CPU features first, then the module moves to CUDA.
  const auto a = onestep::make_inception_detector(inception, torch::kCPU)->features(images).cpu();
  const auto b = onestep::make_inception_detector(inception, torch::Device(torch::kCUDA, 0))->features(images.cuda()).cpu();
  EXPECT_EQ(a.sizes(), (torch::IntArrayRef{4, 2048}));
  EXPECT_TRUE(torch::allclose(a, b, 1e-3, 1e-3)) << (a - b).abs().max().item<double>();
}
