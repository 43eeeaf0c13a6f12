// Forward + backward of the CPU preset's network at batch 64 (`unet-fmnist-cpu`), the step that dominates a CPU
// training run; with the thread count in the label, since it is the lever on a CPU.
//   ./build/bench/onestep_bench --benchmark_filter=Network
#include "config/config.h"
#include "precond/model.h"

#include <benchmark/benchmark.h>

#include <string>

namespace {

void NetworkFmnistCpuForwardBackward(benchmark::State& state) {
  torch::manual_seed(0);
  auto model = onestep::build_model(onestep::load_toml_file(onestep::resolve_preset("unet-fmnist-cpu")));
  model->train();
  const int64_t batch = state.range(0);
  const auto x = torch::randn({batch, 1, 28, 28});
  const auto sigma = torch::exp(torch::randn({batch}) * 1.2 - 1.2);
  for (auto _ : state) {
    auto loss = model->forward(x, sigma, onestep::Scalings::Edm).square().mean();
    loss.backward();
    benchmark::DoNotOptimize(loss);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(std::to_string(torch::get_num_threads()) + " threads");
}
BENCHMARK(NetworkFmnistCpuForwardBackward)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
