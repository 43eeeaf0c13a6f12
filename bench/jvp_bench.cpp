// The cost of a Jacobian-vector product (forward-mode AD, src/networks/jvp.h) next to a plain forward pass and a
// forward + backward, on the 2-D suite's MLP (batch 512) and the Fashion-MNIST UNet (batch 32): the continuous-time
// objectives (sCT / sCD / MeanFlow, docs/continuous-time.md) add one JVP to each step. Run interleaved so that the
// ratios are measured side by side:
//   ./build/bench/onestep_bench --benchmark_filter=Jvp --benchmark_repetitions=5 \
//       --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
// Args: {preset index (0 mlp-2d, 1 unet-fmnist-cpu), threads}.
#include "config/config.h"
#include "networks/jvp.h"
#include "precond/model.h"

#include <benchmark/benchmark.h>

#include <string>

namespace {

struct JvpCase {
  onestep::Denoiser model{nullptr};
  torch::Tensor x, sigma, dx, dsigma;
};

JvpCase make_case(const benchmark::State& state) {
  static const char* presets[] = {"mlp-2d", "unet-fmnist-cpu"};
  const int64_t which = state.range(0);
  torch::set_num_threads(static_cast<int>(state.range(1)));
  torch::manual_seed(0);
  JvpCase c;
  c.model = onestep::build_model(onestep::load_toml_file(onestep::resolve_preset(presets[which])));
  c.model->eval();  // no dropout: the three passes do the same arithmetic
  const auto shape = c.model->sample_shape();
  std::vector<int64_t> full{which == 0 ? 512 : 32};
  full.insert(full.end(), shape.begin(), shape.end());
  c.x = torch::randn(full);
  c.sigma = torch::exp(torch::randn({full[0]}) * 1.2 - 1.2);
  c.dx = torch::randn(full);
  c.dsigma = torch::ones({full[0]});
  return c;
}

void label(benchmark::State& state) {
  state.SetLabel(std::string(state.range(0) == 0 ? "mlp-2d b512" : "unet-fmnist-cpu b32") + ", " +
                 std::to_string(torch::get_num_threads()) + " threads");
}

void JvpPlainForward(benchmark::State& state) {
  JvpCase c = make_case(state);
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(c.model->denoise(c.x, c.sigma, onestep::Scalings::Edm));
  label(state);
}

void JvpForwardAd(benchmark::State& state) {
  JvpCase c = make_case(state);
  torch::NoGradGuard no_grad;
  const onestep::TensorFunction f = [&](const std::vector<torch::Tensor>& p) {
    return c.model->denoise(p[0], p[1], onestep::Scalings::Edm);
  };
  for (auto _ : state) benchmark::DoNotOptimize(onestep::jvp(f, {c.x, c.sigma}, {c.dx, c.dsigma}).tangent);
  label(state);
}

void JvpForwardBackward(benchmark::State& state) {
  JvpCase c = make_case(state);
  for (auto _ : state) {
    auto loss = c.model->denoise(c.x, c.sigma, onestep::Scalings::Edm).square().mean();
    loss.backward();
    benchmark::DoNotOptimize(loss);
  }
  label(state);
}

#define ONESTEP_JVP_ARGS ->Args({0, 1})->Args({1, 2})->Unit(benchmark::kMillisecond)->UseRealTime()
BENCHMARK(JvpPlainForward) ONESTEP_JVP_ARGS;
BENCHMARK(JvpForwardAd) ONESTEP_JVP_ARGS;
BENCHMARK(JvpForwardBackward) ONESTEP_JVP_ARGS;

}  // namespace
