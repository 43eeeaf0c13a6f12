// Throughput of evaluation: feature extraction (FMNIST classifier, Inception-v3), streaming statistics, the Frechet
// distance at FID's 2048 dimensions, and k-NN precision/recall. Runs on CUDA when available, else CPU.
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
