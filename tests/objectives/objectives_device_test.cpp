// Every objective on the test device (ONESTEP_TEST_DEVICE=cuda on a GPU, the CPU otherwise): draws on the batch's
// device with a generator of that device, a full training step (loss, backward, optimizer step), and the EDM loss
// against its closed form with draws replayed from the same generator state.
#include "core/random.h"
#include "objectives/edm.h"
#include "objectives/objective.h"
#include "schedules/schedules.h"
#include "test_networks.h"
#include "trainer/optimizer.h"

#include <ATen/Context.h>
#include <gtest/gtest.h>

#include "test_device.h"

using namespace onestep;
using namespace onestep::testing;

namespace {

// "METHOD" or "METHOD+posterior" (objective.target_estimate = "batch_posterior": its posterior on the device).
Json mlp_root(const std::string& param) {
  const bool posterior = param.size() > 10 && param.substr(param.size() - 10) == "+posterior";
  const std::string method = posterior ? param.substr(0, param.size() - 10) : param;
  Json root{{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 32}, {"num_layers", 2}, {"noise_channels", 8},
                         {"dropout", 0.1}}},
              {"precond", {{"train_scalings", method == "edm" ? "edm" : "consistency"}}},
              {"objective", {{"method", method}}}};
  if (posterior) root["objective"]["target_estimate"] = "batch_posterior";
  return root;
}

class ObjectiveOnDevice : public ::testing::TestWithParam<const char*> {};

TEST_P(ObjectiveOnDevice, FullStepRunsOnTheTestDeviceAndIsReproducibleFromTheGeneratorState) {
  const torch::Device device = test_device();
  const Json root = mlp_root(GetParam());
  torch::manual_seed(3);
  Denoiser model = build_model(root);
  model->to(device);
  model->train();
  auto objective = build_objective(root, model);
  std::vector<std::pair<std::string, torch::Tensor>> params;
  for (auto& item : model->named_parameters()) params.emplace_back(item.key(), item.value());
  auto optimizer = make_optimizer(OptimizerKind::RAdam, params, AdamHyper{});
  std::vector<torch::Tensor> before;
  for (auto& p : model->parameters()) before.push_back(p.detach().clone());

  auto data_generator = make_generator(torch::kCPU, 1);
  Batch batch{random_normal({64, 2}, data_generator, torch::kCPU, torch::kFloat32, "data").to(device), {}};
  auto generator = make_generator(device, 17);
  const auto state = generator_state(generator);
  // Dropout draws from the device's default generator: replay it too.
  at::Generator dropout_generator = at::globalContext().defaultGenerator(device);
  const auto dropout_state = generator_state(dropout_generator);
  const TrainProgress progress{200, 1000, 200 * 64};
  LossOutput first = objective->compute_loss(model, batch, progress, generator);
  ASSERT_EQ(first.loss.device().type(), device.type());
  const double loss = first.loss.item<double>();
  EXPECT_TRUE(std::isfinite(loss) && loss > 0) << loss;

  set_generator_state(generator, state, "objective");
  set_generator_state(dropout_generator, dropout_state, "dropout");
  LossOutput again = objective->compute_loss(model, batch, progress, generator);
  EXPECT_EQ(again.loss.item<double>(), loss);  // same generator states -> the same draws, bit for bit

  first.loss.backward();
  double grad_sq = 0;
  for (auto& p : model->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().device().type(), device.type());
    ASSERT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
    grad_sq += p.grad().square().sum().item<double>();
  }
  EXPECT_GT(grad_sq, 0.0);
  optimizer->step(1e-3);
  int64_t moved = 0;  // (layers that are zero at initialisation keep the layers before them still at step 1)
  const auto after = model->parameters();
  for (size_t i = 0; i < after.size(); ++i) moved += torch::equal(before[i], after[i].detach()) ? 0 : 1;
  EXPECT_GT(moved, 0);
  objective->after_step(model, TrainProgress{201, 1000, 201 * 64});
}

INSTANTIATE_TEST_SUITE_P(Methods, ObjectiveOnDevice,
                         ::testing::Values("edm", "ct", "ict", "ect", "edm+posterior", "ict+posterior", "ect+posterior"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string name = info.param;
                           const auto plus = name.find('+');
                           return plus == std::string::npos ? name : name.substr(0, plus) + "_batch_posterior";
                         });

TEST(ObjectiveOnDevice, EdmLossMatchesItsFormulaWithReplayedDraws) {
  const torch::Device device = test_device();
  Denoiser model(edm_precond(), std::make_shared<ZeroNetImpl>(), points_model_config(2));  // D = c_skip x
  model->to(device);
  EdmObjective objective({});
  Batch batch{torch::tensor({{0.2f, -0.4f}, {0.9f, 0.1f}, {-1.0f, 0.5f}}).to(device), {}};
  auto generator = make_generator(device, 5);
  const auto state = generator_state(generator);
  const double got = objective.compute_loss(model, batch, {}, generator).loss.item<double>();
  set_generator_state(generator, state, "objective");
  const auto sigma = sample_lognormal(3, -1.2, 1.2, generator, device).to(torch::kFloat64).cpu();
  const auto n = random_normal({3, 2}, generator, device, torch::kFloat32, "noise").to(torch::kFloat64).cpu();
  const auto y = batch.x.to(torch::kFloat64).cpu();
  const auto c_skip = (0.25 / (sigma.square() + 0.25)).reshape({3, 1});
  const double expected =
      (edm_loss_weight(sigma, 0.5) * (c_skip * (y + sigma.reshape({3, 1}) * n) - y).square().sum(1)).mean().item<double>();
  EXPECT_NEAR(got, expected, 1e-4 * expected);
}

}  // namespace
