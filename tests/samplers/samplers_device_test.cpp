// The samplers on the test device (ONESTEP_TEST_DEVICE=cuda on a GPU, the CPU otherwise): latents on the device,
// fresh noise from a generator of either device, results against closed forms.
#include "../objectives/test_networks.h"
#include "core/random.h"
#include "samplers/sampler.h"

#include <gtest/gtest.h>

#include "test_device.h"

using namespace onestep;
using namespace onestep::testing;

TEST(SamplersOnDevice, HeunMatchesTheIndependentSolverOnTheTestDevice) {
  // Reference values as in samplers_test.cpp (EDM algorithm 1 in float64 Python, z = (1, -2), N(0.3, 0.5^2) data).
  const torch::Device device = test_device();
  Denoiser model(edm_precond(), std::make_shared<GaussianNetImpl>(0.3, 0.5, 0.5), points_model_config(2));
  model->to(device);
  SamplerConfig heun;
  heun.kind = SamplerKind::Heun;
  heun.steps = 18;
  auto generator = make_generator(device, 0);
  const auto x = run_sampler(model, heun, torch::tensor({{1.0f, -2.0f}}).to(device), generator);
  EXPECT_EQ(x.device().type(), device.type());
  EXPECT_NEAR(x[0][0].item<double>(), 0.8256460446122926, 1e-4);
  EXPECT_NEAR(x[0][1].item<double>(), -0.7572278663908478, 1e-4);
}

TEST(SamplersOnDevice, TwoStepNoiseFromACpuGeneratorIsTheSameOnEveryDevice) {
  // The CLI and the evaluation sample with a CPU generator: a seed then means the same samples on every device.
  const torch::Device device = test_device();
  Denoiser model(edm_precond(0.3), std::make_shared<ZeroNetImpl>(), points_model_config(2));
  SamplerConfig two;
  two.sigmas = {80.0, 0.821};
  two.float64 = true;  // the noise is drawn in the sampler's arithmetic dtype
  const auto z = torch::zeros({4000, 2});
  auto cpu_generator = make_generator(torch::kCPU, 9);
  const auto expected_noise = random_normal({4000, 2}, cpu_generator, torch::kCPU, torch::kFloat64, "z");
  auto on_device = std::make_shared<ZeroNetImpl>();
  Denoiser device_model(edm_precond(0.3), on_device, points_model_config(2));
  device_model->to(device);
  auto generator = make_generator(torch::kCPU, 9);
  run_sampler(device_model, two, z.to(device), generator);
  // The second call's input is c_in (x + sqrt(s^2 - sigma_min^2) z) with x = 0 from the first step.
  const double c_in = 1.0 / std::sqrt(0.821 * 0.821 + 0.25);
  const double scale = std::sqrt(0.821 * 0.821 - 0.09);
  const auto seen = on_device->last_input.cpu().to(torch::kFloat64) / c_in / scale;
  EXPECT_TRUE(torch::allclose(seen, expected_noise, 1e-5, 1e-5));
}

TEST(SamplersOnDevice, TwoStepWithAGeneratorOfTheTestDevice) {
  // The trainer's sample grids draw the fresh noise on the training device.
  const torch::Device device = test_device();
  auto net = std::make_shared<ZeroNetImpl>();
  Denoiser model(edm_precond(0.3), net, points_model_config(2));
  model->to(device);
  SamplerConfig two;
  two.sigmas = {80.0, 0.821};
  auto generator = make_generator(device, 1);
  const auto x = run_sampler(model, two, torch::zeros({20000, 2}).to(device), generator);
  EXPECT_EQ(x.device().type(), device.type());
  const double c_in = 1.0 / std::sqrt(0.821 * 0.821 + 0.25);
  EXPECT_NEAR((net->last_input.cpu() / c_in).std().item<double>(), std::sqrt(0.821 * 0.821 - 0.09), 0.01);
}
