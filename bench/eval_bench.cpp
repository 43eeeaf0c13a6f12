// Throughput of evaluation: the whole sample-and-score pipeline of `onestep eval --ckpt` (1-step generation, features,
// streaming statistics), feature extraction alone (FMNIST classifier, Inception-v3), streaming statistics, the
// Frechet distance at FID's 2048 dimensions, and k-NN precision/recall. Runs on CUDA when available, else CPU.
#include "config/config.h"
#include "metrics/evaluation.h"
#include "metrics/feature_stats.h"
#include "metrics/fmnist_classifier.h"
#include "metrics/frechet.h"
#include "metrics/inception.h"
#include "metrics/precision_recall.h"

#include <benchmark/benchmark.h>

namespace {

torch::Device bench_device() { return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::kCPU; }

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// One-step generation + detector features + float64 statistics, as `onestep eval --ckpt` runs it; the counter
// `s_per_50k` is the time a 50k-image FID/FD evaluation takes at this rate. Random weights: the cost is the same.
void generate_and_score(benchmark::State& state, const char* preset, bool fid) {
  const auto device = bench_device();
  if (fid && !device.is_cuda() && state.range(1) > 1000) {
    state.SkipWithError("the 50k-image FID pipeline needs a GPU (hours on a CPU)");
    return;
  }
  torch::manual_seed(0);
  auto model = onestep::build_model(onestep::load_config_file(onestep::resolve_preset(preset)));
  model->to(device);
  auto detector = fid ? onestep::make_inception_detector(onestep::InceptionV3(), device)
                      : onestep::make_fmnist_detector(onestep::FmnistClassifier(), device);
  const auto sampler = onestep::sampler_for_steps(onestep::Json::object(), 1, 0.821);
  const int64_t batch = state.range(0), n = state.range(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(onestep::generated_features(model, sampler, *detector, n, batch, 0).stats);
    sync(device);
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["s_per_50k"] = benchmark::Counter(static_cast<double>(state.iterations() * n) / 50000.0,
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void EvalGenerateAndScoreFmnist(benchmark::State& state) { generate_and_score(state, "unet-fmnist-cpu", false); }
BENCHMARK(EvalGenerateAndScoreFmnist)->Args({500, 2000})->Unit(benchmark::kSecond)->UseRealTime();

// DDPM++ (55.7M parameters) + Inception-v3: the CIFAR-10 FID pipeline. batch x n; on a CPU use a small n.
void EvalGenerateAndScoreCifar(benchmark::State& state) { generate_and_score(state, "ddpmpp-cifar10", true); }
BENCHMARK(EvalGenerateAndScoreCifar)->Args({16, 32})->Args({1000, 50000})->Unit(benchmark::kSecond)->UseRealTime();

void EvalFmnistFeatures(benchmark::State& state) {
  const auto device = bench_device();
  auto detector = onestep::make_fmnist_detector(onestep::FmnistClassifier(), device);
  const auto images = torch::randint(0, 256, {state.range(0), 1, 32, 32}, torch::kUInt8).to(device);
  for (auto _ : state) {
    benchmark::DoNotOptimize(detector->features(images));
    sync(device);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(EvalFmnistFeatures)->Arg(500)->Unit(benchmark::kMillisecond)->UseRealTime();

void EvalInceptionFeatures(benchmark::State& state) {
  const auto device = bench_device();
  auto detector = onestep::make_inception_detector(onestep::InceptionV3(), device);
  const auto images = torch::randint(0, 256, {state.range(0), 3, 32, 32}, torch::kUInt8).to(device);
  for (auto _ : state) {
    benchmark::DoNotOptimize(detector->features(images));
    sync(device);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(EvalInceptionFeatures)->Arg(4)->Arg(250)->Unit(benchmark::kMillisecond)->UseRealTime();

void EvalFeatureStats(benchmark::State& state) {
  const auto features = torch::randn({500, state.range(0)}).to(bench_device());
  for (auto _ : state) {
    onestep::FeatureStatsAccumulator acc(state.range(0));
    acc.add(features);
    benchmark::DoNotOptimize(acc.finish());
  }
  state.SetItemsProcessed(state.iterations() * 500);
}
BENCHMARK(EvalFeatureStats)->Arg(128)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

void EvalFrechetDistance(benchmark::State& state) {
  const int64_t d = state.range(0);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto a = torch::randn({d, d}, opts), b = torch::randn({d, d}, opts);
  const auto s1 = torch::mm(a, a.t()) / d, s2 = torch::mm(b, b.t()) / d;
  const auto mu1 = torch::randn({d}, opts), mu2 = torch::randn({d}, opts);
  for (auto _ : state) benchmark::DoNotOptimize(onestep::frechet_distance(mu1, s1, mu2, s2));
}
BENCHMARK(EvalFrechetDistance)->Arg(128)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

void EvalPrecisionRecall(benchmark::State& state) {
  const auto device = bench_device();
  const auto real = torch::randn({state.range(0), 128}).to(device);
  const auto fake = torch::randn({state.range(0), 128}).to(device);
  for (auto _ : state) benchmark::DoNotOptimize(onestep::precision_recall(real, fake));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(EvalPrecisionRecall)->Arg(10000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
