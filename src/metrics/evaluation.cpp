#include "metrics/evaluation.h"

#include "core/error.h"
#include "core/progress.h"
#include "core/random.h"
#include "data/dataset.h"
#include "distributed/communicator.h"
#include "distributed/sharding.h"
#include "io/npy.h"
#include "metrics/frechet.h"
#include "metrics/metric_names.h"
#include "metrics/sliced_wasserstein.h"
#include "samplers/sampling_job.h"

#include <chrono>
#include <cstdio>
#include <memory>

namespace onestep {

EvalConfig EvalConfig::from_config(const Json& root) {
  EvalConfig c;
  SectionReader r(root, "eval");
  c.metric = r.get_string("metric", c.metric, {"fd-fmnist", "fid", "swd"});
  c.n = r.get_int("n", c.n);
  c.batch = r.get_int("batch", c.batch);
  c.detector = r.get_string("detector", c.detector);
  c.ref = r.get_string("ref", c.ref);
  c.every = r.get_int("every", c.every);
  c.steps = r.get_ints("steps", c.steps);
  c.sigma_mid = r.get_float("sigma_mid", c.sigma_mid);
  c.seed = r.get_int("seed", c.seed);
  r.finish();
  require(c.n >= 2, "eval.n must be at least 2, got ", c.n);
  require(c.batch >= 1, "eval.batch must be positive, got ", c.batch);
  require(c.every >= 0, "eval.every must be >= 0, got ", c.every);
  require(!c.steps.empty(), "eval.steps must list at least one step count");
  for (auto s : c.steps) require(s >= 1, "eval.steps: step counts must be positive, got ", s);
  require(c.sigma_mid > 0, "eval.sigma_mid must be positive");
  return c;
}

Json EvalConfig::to_json() const {
  return Json{{"metric", metric}, {"n", n},         {"batch", batch}, {"detector", detector}, {"ref", ref},
              {"every", every},   {"steps", steps}, {"sigma_mid", sigma_mid}, {"seed", seed}};
}

std::string metric_key(const std::string& metric, int64_t steps, const std::vector<int64_t>& image_shape,
                       const std::string& dataset) {
  return metric_name(metric, image_shape, dataset).key_prefix + std::to_string(steps) + "step";
}

void report_stage(const std::string& label, const std::string& stage, double seconds) {
  std::fprintf(stderr, "%s %s in %s\n", label.c_str(), stage.c_str(), format_elapsed(seconds).c_str());
  std::fflush(stderr);
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

}  // namespace

GeneratedFeatures generated_features(Denoiser& model, const SamplerConfig& sampler, FeatureDetector& detector,
                                     int64_t n, int64_t batch, uint64_t seed, bool keep_features,
                                     const std::string& progress_label, Communicator* communicator) {
  require(n >= 2 && batch >= 1, "evaluation: need n >= 2 images and a positive batch");
  const auto shape = model->sample_shape();
  require(shape.size() == 3, "evaluation needs an image model, got sample shape of rank ", shape.size());
  // Sharded: this rank makes its batches, rank 0 gathers every feature and accumulates them in the order and
  // batches of a single process.
  FeatureStatsAccumulator acc(detector.dim());
  std::vector<torch::Tensor> kept;
  std::unique_ptr<Progress> progress;
  if (!progress_label.empty())
    progress = std::make_unique<Progress>(progress_label + " generate+features", own_samples(communicator, n, batch).size(),
                                          "img");
  double generate_s = 0, features_s = 0;
  int64_t done = 0;
  auto t = Clock::now();
  SamplingJob job;
  job.n = n;
  job.batch = batch;
  job.seed = seed;
  run_sampling_job(model, sampler, job, communicator, [&](int64_t, const torch::Tensor& x) {
    // On CUDA kernels run asynchronously until the finiteness check below waits for them, so there the split
    // between the two stages is approximate; on the CPU it is exact.
    const auto images = float_to_images(x);
    generate_s += seconds_since(t);
    t = Clock::now();
    const auto feats = detector.features(images);
    require(torch::isfinite(feats).all().item<bool>(),
            "evaluation: generated images gave NaN/Inf features (did sampling diverge?)");
    if (communicator == nullptr) acc.add(feats);
    if (keep_features || communicator != nullptr) kept.push_back(feats.cpu().to(torch::kFloat32));
    features_s += seconds_since(t);
    done += x.size(0);
    if (progress) progress->update(done, {{"generate_s", generate_s}, {"features_s", features_s}});
    t = Clock::now();
  });
  if (progress) progress->finish();
  GeneratedFeatures out;
  torch::Tensor features = kept.empty() ? torch::empty({0, detector.dim()}) : torch::cat(kept);
  if (communicator != nullptr) {
    features = gather_rows_to_main(communicator, features, n, batch, "gather of the evaluation features");
    if (!communicator->is_main()) return out;  // no statistics: rank 0 computes them
    for (int64_t start = 0; start < n; start += batch) acc.add(features.narrow(0, start, std::min(batch, n - start)));
  }
  const auto stats_start = Clock::now();
  out.stats = acc.finish();
  if (progress) report_stage(progress_label, "statistics (mean, covariance)", seconds_since(stats_start));
  if (keep_features) out.features = features;
  return out;
}

FeatureStats image_feature_stats(FeatureDetector& detector, const torch::Tensor& images, int64_t batch,
                                 const std::string& progress_label) {
  require(images.dim() == 4 && images.scalar_type() == torch::kUInt8, "expected uint8 images [N, C, H, W], got ",
          images.sizes(), " ", images.scalar_type());
  require(batch >= 1, "batch must be positive");
  const int64_t n = images.size(0);
  std::unique_ptr<Progress> progress;
  if (!progress_label.empty()) progress = std::make_unique<Progress>(progress_label + " features", n, "img");
  FeatureStatsAccumulator acc(detector.dim());
  for (int64_t start = 0; start < n; start += batch) {
    acc.add(detector.features(images.slice(0, start, std::min(start + batch, n))));
    if (progress) progress->update(std::min(start + batch, n));
  }
  if (progress) progress->finish();
  const auto t = Clock::now();
  auto stats = acc.finish();
  if (progress) report_stage(progress_label, "statistics (mean, covariance)", seconds_since(t));
  return stats;
}

FeatureStats reference_stats(const EvalConfig& config, const Json& root, FeatureDetector& detector,
                             const std::string& progress_label, const std::vector<int64_t>& sample_shape) {
  if (!config.ref.empty()) return read_feature_stats(config.ref);
  auto data_config = DataConfig::from_config(root);
  const auto data = load_dataset(data_config);
  require(data.is_image(), "reference statistics need an image dataset, [data].dataset is '", data_config.dataset,
          "'");
  const std::vector<int64_t> data_shape(data.samples.sizes().begin() + 1, data.samples.sizes().end());
  require(sample_shape.empty() || sample_shape == data_shape, "the model makes ", shape_text_x(sample_shape),
          " images but the reference data (data.dataset = ", data_config.dataset,
          data_config.path.empty() ? "" : ", data.path = " + data_config.path, ") holds ", shape_text_x(data_shape),
          ": evaluate against the model's own data (--config with its [data], e.g. the run's config.toml) or give "
          "--ref STATS.npz");
  return image_feature_stats(detector, data.samples, config.batch, progress_label);
}

torch::Tensor generated_points(Denoiser& model, const SamplerConfig& sampler, int64_t n, int64_t batch,
                               uint64_t seed, const std::string& progress_label, Communicator* communicator) {
  require(n >= 2 && batch >= 1, "evaluation: need n >= 2 points and a positive batch");
  require(model->sample_shape().size() == 1, "the swd metric is for 2-D point models; image models use fd-fmnist "
                                             "or fid");
  std::vector<torch::Tensor> parts;
  std::unique_ptr<Progress> progress;
  if (!progress_label.empty())
    progress = std::make_unique<Progress>(progress_label + " generate", own_samples(communicator, n, batch).size(),
                                          "points");
  int64_t done = 0;
  SamplingJob job;
  job.n = n;
  job.batch = batch;
  job.seed = seed;
  run_sampling_job(model, sampler, job, communicator, [&](int64_t, const torch::Tensor& x) {
    parts.push_back(x.cpu());
    done += x.size(0);
    if (progress) progress->update(done);
  });
  if (progress) progress->finish();
  torch::Tensor raw = parts.empty() ? torch::empty({0, model->sample_shape()[0]}) : torch::cat(parts);
  raw = gather_rows_to_main(communicator, raw, n, batch, "gather of the generated points");
  if (!raw.defined()) return raw;  // not rank 0
  // Compared in the data's own units, where the reference points live.
  auto points = model->point_scaling().to_user(raw).to(torch::kFloat32);
  require(torch::isfinite(points).all().item<bool>(), "evaluation: generated points hold NaN/Inf (did sampling "
                                                      "diverge?)");
  return points;
}

torch::Tensor reference_points(const EvalConfig& config, const Json& root, int64_t draw) {
  if (!config.ref.empty()) {
    require(draw == 0, "swd: reference points from ", config.ref, " are a single set");
    auto points = read_npy(config.ref);
    require(points.dim() == 2 && points.size(0) >= 2, "swd reference ", config.ref, ": expected points [N, D], got ",
            points.sizes());
    return points.to(torch::kFloat32);
  }
  auto data_config = DataConfig::from_config(root);
  require(data_config.is_toy_distribution(), "swd: fresh reference points need a built-in toy [data].dataset, got '",
          data_config.dataset, "'; pass --ref POINTS.npy");
  // Training draws with data.seed; evaluation draws never coincide with it.
  data_config.seed = data_config.seed + 1000003 * (1 + draw);
  data_config.num_points = config.n;
  data_config.subset = 0;
  return load_dataset(data_config).samples.to(torch::kFloat32);
}

double points_distance(const torch::Tensor& a, const torch::Tensor& b) {
  constexpr int64_t kProjections = 1000;
  constexpr uint64_t kProjectionSeed = 0x5eed;
  return sliced_wasserstein(a, b, kProjections, kProjectionSeed, 2);
}

std::function<Json(Denoiser&, int64_t)> make_evaluation_hook(const Json& root, bool verbose) {
  const auto config = EvalConfig::from_config(root);
  struct State {
    std::unique_ptr<FeatureDetector> detector;
    FeatureStats reference;
    torch::Tensor reference_points;
  };
  auto state = std::make_shared<State>();
  // Validate the sampler settings now, so a bad [sample] section fails before training starts.
  for (auto steps : config.steps) (void)sampler_for_steps(root, steps, config.sigma_mid);
  return [config, root, state, verbose](Denoiser& model, int64_t step) -> Json {
    Json result = Json::object();
    auto label = [&](int64_t steps) {
      return verbose ? "eval step " + std::to_string(step) + " " + std::to_string(steps) + "-step" : std::string();
    };
    if (config.metric == "swd") {
      if (!state->reference_points.defined()) state->reference_points = reference_points(config, root);
      for (auto steps : config.steps) {
        const auto sampler = sampler_for_steps(root, steps, config.sigma_mid);
        const auto points = generated_points(model, sampler, config.n, config.batch,
                                             static_cast<uint64_t>(config.seed), label(steps));
        result[metric_key(config.metric, steps)] = points_distance(points, state->reference_points);
      }
      return result;
    }
    // Named for what it measures: FD-FMNIST only on Fashion-MNIST (metrics/metric_names.h).
    const std::string dataset = DataConfig::from_config(root).dataset;
    if (!state->detector) {
      const std::string note = metric_name(config.metric, model->sample_shape(), dataset).note;
      if (!note.empty()) std::fprintf(stderr, "note: %s\n", note.c_str());
      state->detector = load_detector(config.metric, config.detector, model_device(model));
      state->reference =
          reference_stats(config, root, *state->detector, verbose ? "eval reference" : "", model->sample_shape());
    }
    for (auto steps : config.steps) {
      const auto sampler = sampler_for_steps(root, steps, config.sigma_mid);
      // The same latents at every evaluation, so successive values differ only through the model.
      const auto generated = generated_features(model, sampler, *state->detector, config.n, config.batch,
                                                static_cast<uint64_t>(config.seed), false, label(steps));
      const auto t = Clock::now();
      result[metric_key(config.metric, steps, model->sample_shape(), dataset)] =
          frechet_distance(generated.stats, state->reference);
      if (verbose) report_stage(label(steps), "Frechet distance", seconds_since(t));
    }
    return result;
  };
}

}  // namespace onestep
