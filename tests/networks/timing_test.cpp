// Not run by default (no timing assertions in CI): prints the forward+backward time of the CPU preset.
// ./build/tests/onestep_tests --gtest_also_run_disabled_tests --gtest_filter='*Timing*'
#include "config/config.h"
#include "precond/model.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

TEST(NetworkTiming, DISABLED_FmnistCpuForwardBackwardBatch64) {
  torch::manual_seed(0);
  auto model = onestep::build_model(onestep::load_toml_file(onestep::resolve_preset("unet-fmnist-cpu")));
  model->train();
  auto x = torch::randn({64, 1, 28, 28});
  auto sigma = torch::exp(torch::randn({64}) * 1.2 - 1.2);
  double best = 1e30;
  for (int i = 0; i < 4; ++i) {
    const auto start = std::chrono::steady_clock::now();
    auto loss = model->forward(x, sigma, onestep::Scalings::Edm).square().mean();
    loss.backward();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (i > 0) best = std::min(best, ms);
  }
  std::printf("[timing] unet-fmnist-cpu forward+backward, batch 64, %d threads: %.0f ms\n",
              torch::get_num_threads(), best);
}
