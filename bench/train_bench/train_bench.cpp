// Training-step, sampling and FID-pass throughput (issues 6 and 16). Runs the real Trainer on synthetic data, so
// what it times is what `onestep train` does per step. Reports images/s, peak memory and utilization: achieved
// FLOP/s (from the network's counted forward MACs) over a matrix-product peak measured in the same run.
//
//   onestep_train_bench --model ddpmpp-cifar10 --objective ect --batches 128,256,512 --modes fp32,bf16,bf16+cl+bench
//   onestep_train_bench --model unet-fmnist-cpu --batches 32 --steps 5        (CPU smoke run)
//
// A mode is '+'-joined speed-ups, each a [train] key switched on over the fp32 eager baseline (every key off):
// bf16 (train.bf16), tf32 (train.tf32), cl (train.channels_last), bench (train.cudnn_benchmark); "fp32" is none.
// So every speed-up is a ratio against the baseline of the same run. One more token, dist, is no speed-up: the
// trainer then runs the data-parallel path with a process group of one (nccl on CUDA, gloo on the CPU: gradient
// hooks, buckets and all-reduces, the loss all-reduce), so "fp32,dist" measures that path's overhead at world
// size 1 (issue 14's target: under 2%). --json FILE appends one JSON object per measurement (scripts/gpu_speed.sh
// builds its table from them).
#include "config/config.h"
#include "core/device.h"
#include "core/error.h"
#include "data/dataset.h"
#include "distributed/communicator.h"
#include "distributed/launch_env.h"
#include "io/run_dir.h"
#include "metrics/evaluation.h"
#include "metrics/inception.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "samplers/sampler.h"
#include "trainer/train_config.h"
#include "trainer/trainer.h"

#include <CLI/CLI.hpp>
#include <sys/resource.h>
#include <unistd.h>

#ifdef ONESTEP_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/cuda.h>
#endif

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

namespace {

using onestep::Json;
using Clock = std::chrono::steady_clock;

void synchronize(const torch::Device& device) {
#ifdef ONESTEP_WITH_CUDA
  if (device.is_cuda()) torch::cuda::synchronize();
#else
  (void)device;
#endif
}

void reset_peak_memory(const torch::Device& device) {
#ifdef ONESTEP_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
#else
  (void)device;
#endif
}

// Peak GPU memory of the caching allocator, or the process's peak resident set on the CPU.
double peak_memory_gib(const torch::Device& device) {
#ifdef ONESTEP_WITH_CUDA
  if (device.is_cuda()) {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return double(stats.allocated_bytes[0].peak) / (1ull << 30);
  }
#endif
  (void)device;
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return double(usage.ru_maxrss) / (1 << 20);
}

// The matrix peak the utilization figures are relative to: bf16 on CUDA (tensor cores), fp32 on the CPU.
double measured_matmul_peak_flops(const torch::Device& device) {
  const bool cuda = device.is_cuda();
  const int64_t n = cuda ? 8192 : 1024;
  const auto dtype = cuda ? torch::kBFloat16 : torch::kFloat32;
  auto a = torch::randn({n, n}, torch::TensorOptions().dtype(dtype).device(device));
  auto b = torch::randn({n, n}, torch::TensorOptions().dtype(dtype).device(device));
  for (int i = 0; i < 3; ++i) a.matmul(b);
  synchronize(device);
  const int reps = cuda ? 50 : 5;
  const auto start = Clock::now();
  for (int i = 0; i < reps; ++i) a.matmul(b);
  synchronize(device);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return 2.0 * n * n * n * reps / seconds;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::string item;
  for (char c : text) {
    if (c == ',') {
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  if (!item.empty()) out.push_back(item);
  return out;
}

// A mode is '+'-joined speed-ups over the eager fp32 baseline "fp32" (every speed-up key off).
Json mode_overrides(const std::string& mode) {
  static const std::vector<std::pair<std::string, std::string>> levers = {
      {"bf16", "bf16"}, {"tf32", "tf32"}, {"cl", "channels_last"}, {"bench", "cudnn_benchmark"}};
  Json overrides = Json::object();
  for (const auto& [token, key] : levers) overrides[key] = false;
  if (mode == "fp32") return overrides;
  std::string token;
  std::stringstream tokens(mode);
  while (std::getline(tokens, token, '+')) {
    bool known = token == "dist";  // not a [train] key: see uses_process_group
    for (const auto& [name, key] : levers)
      if (token == name) {
        overrides[key] = true;
        known = true;
      }
    if (!known)
      onestep::fail("unknown speed-up '", token, "' in mode '", mode,
                    "' (a mode is fp32 or '+'-joined speed-ups: bf16, tf32, cl, bench, and dist)");
  }
  return overrides;
}

bool uses_process_group(const std::string& mode) {
  std::string token;
  std::stringstream tokens(mode);
  while (std::getline(tokens, token, '+'))
    if (token == "dist") return true;
  return false;
}

// A process group of this one process on localhost (the TCPStore picks a free port).
std::shared_ptr<onestep::Communicator> group_of_one(const torch::Device& device) {
  onestep::LaunchEnv env;
  env.master_addr = "127.0.0.1";
  env.master_port = 0;
  env.source = "bench";
  return onestep::Communicator::create(env, device, std::chrono::seconds(300));
}

// --json FILE: one JSON object per line and measurement.
class JsonLines {
 public:
  explicit JsonLines(const std::string& path) {
    if (path.empty()) return;
    out_.open(path, std::ios::app);
    onestep::require(out_.good(), "--json: cannot write '", path, "'");
  }
  void write(const Json& record) {
    if (out_.is_open()) out_ << record.dump() << "\n" << std::flush;
  }

 private:
  std::ofstream out_;
};

struct Options {
  std::string model = "ddpmpp-cifar10";
  std::string objective = "ect";
  std::string batches = "128,256,512";
  std::string modes = "fp32,bf16";
  std::string device = "auto";
  std::string json, tag;
  int64_t warmup = 3, steps = 10, sample_batch = 1024, fid_images = 0, fid_batch = 1000;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"onestep training-step and sampling benchmark"};
  Options o;
  app.add_option("--model", o.model, "network preset or config file");
  app.add_option("--objective", o.objective, "edm | ct | ict | ect");
  app.add_option("--batches", o.batches, "comma-separated batch sizes");
  app.add_option("--modes", o.modes,
                 "comma-separated modes: fp32 (eager baseline) or '+'-joined speed-ups of bf16, tf32, cl, bench");
  app.add_option("--device", o.device, "auto | cpu | cuda");
  app.add_option("--warmup", o.warmup, "untimed steps per configuration");
  app.add_option("--steps", o.steps, "timed steps per configuration");
  app.add_option("--sample-batch", o.sample_batch, "batch of the one-step sampling measurement (0 = skip)");
  app.add_option("--fid-images", o.fid_images,
                 "images of a timed FID pass: 1-step generation + Inception-v3 (random weights) + statistics "
                 "(0 = skip; 50000 is the real pass)");
  app.add_option("--fid-batch", o.fid_batch, "batch of the FID pass");
  app.add_option("--json", o.json, "append one JSON object per measurement to this file");
  app.add_option("--tag", o.tag, "a \"tag\" field in each training record of --json (which part of a script)");
  CLI11_PARSE(app, argc, argv);
  try {
    const torch::Device device =
        onestep::resolve_device(onestep::parse_device_choice(o.device, "--device"), "--device");
    JsonLines json(o.json);
    for (const auto& mode : split(o.modes)) mode_overrides(mode);  // a bad mode fails before any measurement
    const Json base = onestep::load_config_file(onestep::resolve_preset(o.model));
    onestep::Denoiser probe = onestep::build_model(base);
    const auto shape = probe->sample_shape();
    const double forward_flops = 2.0 * double(onestep::forward_macs(probe));
    // Per image: forward + backward of the student (about 3 forwards) plus, for consistency objectives,
    // the no-grad teacher forward (docs/methods.md section 9).
    const double step_flops = forward_flops * (o.objective == "edm" ? 3.0 : 4.0);
    const double peak = measured_matmul_peak_flops(device);
    std::printf("device %s | model %s: %.2f GFLOP forward/image | matrix peak %.1f TFLOP/s (%s)\n",
                device.str().c_str(), o.model.c_str(), forward_flops / 1e9, peak / 1e12,
                device.is_cuda() ? "bf16" : "fp32");
    json.write(Json{{"kind", "header"}, {"device", device.str()}, {"model", o.model}, {"objective", o.objective},
                    {"forward_gflop_per_image", forward_flops / 1e9}, {"step_gflop_per_image", step_flops / 1e9},
                    {"matmul_peak_tflops", peak / 1e12}, {"matmul_peak_dtype", device.is_cuda() ? "bf16" : "fp32"},
                    {"warmup", o.warmup}, {"steps", o.steps}});
    std::printf("%-16s %-6s %12s %12s %10s %10s\n", "mode", "batch", "img/s", "ms/step", "util%", "peak GiB");
    std::shared_ptr<onestep::Communicator> communicator;  // created by the first dist mode, kept for the others

    for (const auto& batch_text : split(o.batches)) {
      const int64_t batch = std::stoll(batch_text);
      // Synthetic uint8 images of the network's shape: the loader path is the real one.
      auto data = std::make_shared<onestep::Dataset>();
      std::vector<int64_t> data_shape{std::max<int64_t>(batch * 4, 64)};
      data_shape.insert(data_shape.end(), shape.begin(), shape.end());
      data->samples = torch::randint(0, 256, data_shape, torch::kUInt8);
      data->name = "synthetic";
      for (const auto& mode : split(o.modes)) {
        Json root = base;
        root["objective"] = Json{{"method", o.objective}};
        Json train = mode_overrides(mode);
        train["batch"] = batch;
        train["steps"] = o.warmup + o.steps;
        train["log_every"] = 1000000;
        train["checkpoint_every"] = 0;
        train["sample_every"] = -1;
        train["device"] = device.is_cuda() ? "cuda" : "cpu";
        root["train"] = train;
        const auto dir = std::filesystem::temp_directory_path() /
                         ("onestep_bench_" + std::to_string(::getpid()) + "_" + mode + "_" + batch_text);
        onestep::RunDir run(dir, onestep::RunMode::Force);
        onestep::Denoiser model = onestep::build_model(root);
        auto objective = onestep::build_objective(root, model);
        if (uses_process_group(mode) && !communicator) communicator = group_of_one(device);
        const onestep::TrainConfig train_config = onestep::TrainConfig::from_config(root);
        // The mode's process-wide CUDA flags, as `onestep train` sets them (core/device.h).
        onestep::set_cuda_math(train_config.tf32, train_config.cudnn_benchmark, train_config.deterministic);
        onestep::Trainer trainer(run, root, train_config, std::nullopt, model,
                                 std::move(objective), data, uses_process_group(mode) ? communicator : nullptr);
        trainer.set_quiet(true);
        trainer.set_checkpoint_at_end(false);  // time the steps, not a checkpoint write
        trainer.train(o.warmup);
        synchronize(device);
        reset_peak_memory(device);
        const auto start = Clock::now();
        trainer.train(o.warmup + o.steps);
        synchronize(device);
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        const double images_per_s = double(batch * o.steps) / seconds;
        const double memory = peak_memory_gib(device);
        std::printf("%-16s %-6lld %12.1f %12.2f %10.1f %10.2f\n", mode.c_str(), (long long)batch, images_per_s,
                    1000.0 * seconds / o.steps, 100.0 * images_per_s * step_flops / peak, memory);
        std::fflush(stdout);
        Json record{{"kind", "train"}, {"mode", mode}, {"batch", batch}, {"images_per_s", images_per_s},
                    {"ms_per_step", 1000.0 * seconds / o.steps},
                    {"utilization_pct", 100.0 * images_per_s * step_flops / peak}, {"peak_memory_gib", memory}};
        if (!o.tag.empty()) record["tag"] = o.tag;
        if (uses_process_group(mode)) record["backend"] = communicator->backend_name();
        json.write(record);
        std::filesystem::remove_all(dir);
      }
    }

    if (o.sample_batch > 0) {
      onestep::Denoiser model = onestep::build_model(base);
      model->to(device);
      onestep::SamplerConfig sampler;  // one step at sigma_max
      std::vector<int64_t> latent_shape{o.sample_batch};
      latent_shape.insert(latent_shape.end(), shape.begin(), shape.end());
      auto generator = at::detail::createCPUGenerator(0);
      auto latents = torch::randn(latent_shape, torch::TensorOptions().device(device));
      onestep::run_sampler(model, sampler, latents, generator);
      synchronize(device);
      reset_peak_memory(device);
      const int reps = device.is_cuda() ? 10 : 1;
      const auto start = Clock::now();
      for (int i = 0; i < reps; ++i) onestep::run_sampler(model, sampler, latents, generator);
      synchronize(device);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      std::printf("one-step sampling, batch %lld, fp32: %.1f img/s, peak %.2f GiB\n", (long long)o.sample_batch,
                  double(o.sample_batch * reps) / seconds, peak_memory_gib(device));
      json.write(Json{{"kind", "sample"}, {"batch", o.sample_batch}, {"images_per_s", double(o.sample_batch * reps) / seconds},
                      {"peak_memory_gib", peak_memory_gib(device)}});
    }

    if (o.fid_images > 0) {
      // The pass of `onestep eval --ckpt`: 1-step generation, Inception-v3 features, float64 statistics.
      // Random weights: the cost is the same as the trained networks'.
      torch::manual_seed(0);
      onestep::Denoiser model = onestep::build_model(base);
      model->to(device);
      auto detector = onestep::make_inception_detector(onestep::InceptionV3(), device);
      const auto sampler = onestep::sampler_for_steps(Json::object(), 1, 0.821);
      const int64_t batch = std::min(o.fid_batch, o.fid_images);
      onestep::generated_features(model, sampler, *detector, batch, batch, 1);  // warm-up (cuDNN, allocator)
      synchronize(device);
      reset_peak_memory(device);
      const auto start = Clock::now();
      onestep::generated_features(model, sampler, *detector, o.fid_images, batch, 0);
      synchronize(device);
      const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
      std::printf("FID pass, %lld images at batch %lld (1-step generation + Inception-v3 + statistics): %.2f s, "
                  "%.1f img/s, peak %.2f GiB\n", (long long)o.fid_images, (long long)batch, seconds,
                  double(o.fid_images) / seconds, peak_memory_gib(device));
      json.write(Json{{"kind", "fid"}, {"images", o.fid_images}, {"batch", batch}, {"seconds", seconds},
                      {"images_per_s", double(o.fid_images) / seconds}, {"peak_memory_gib", peak_memory_gib(device)}});
    }
  } catch (const std::exception& e) {
    std::cerr << "onestep_train_bench: error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
