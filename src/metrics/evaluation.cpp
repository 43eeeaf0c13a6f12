#include "metrics/evaluation.h"

#include "core/error.h"
#include "data/dataset.h"
#include "metrics/frechet.h"

#include <memory>

namespace onestep {

EvalConfig EvalConfig::from_config(const Json& root) {
  EvalConfig c;
  SectionReader r(root, "eval");
  c.metric = r.get_string("metric", c.metric, {"fd-fmnist", "fid"});
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

std::string metric_key(const std::string& metric, int64_t steps) {
  return (metric == "fid" ? std::string("fid_") : std::string("fd_fmnist_")) + std::to_string(steps) + "step";
}

SamplerConfig sampler_for_steps(const Json& root, int64_t steps, double sigma_mid) {
  auto sampler = SamplerConfig::from_config(root);
  if (sampler.kind == "consistency") {
    require(steps == 1 || steps == 2, "consistency sampling is evaluated with 1 or 2 steps, got ", steps,
            " (set [sample].sigmas for other schedules)");
    sampler.sigmas = steps == 1 ? std::vector<double>{sampler.sigma_max}
                                : std::vector<double>{sampler.sigma_max, sigma_mid};
  } else {
    sampler.steps = steps;
  }
  return sampler;
}

namespace {

torch::Device model_device(Denoiser& model) {
  const auto params = model->parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

}  // namespace

GeneratedFeatures generated_features(Denoiser& model, const SamplerConfig& sampler, FeatureDetector& detector,
                                     int64_t n, int64_t batch, uint64_t seed, bool keep_features) {
  require(n >= 2 && batch >= 1, "evaluation: need n >= 2 images and a positive batch");
  const auto device = model_device(model);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const auto shape = model->sample_shape();
  require(shape.size() == 3, "evaluation needs an image model, got sample shape of rank ", shape.size());
  FeatureStatsAccumulator acc(detector.dim());
  std::vector<torch::Tensor> kept;
  const bool was_training = model->is_training();
  model->eval();
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t b = std::min(batch, n - start);
    std::vector<int64_t> latent_shape{b};
    latent_shape.insert(latent_shape.end(), shape.begin(), shape.end());
    // Latents and labels come from a CPU generator so a seed means the same images on every device.
    const auto latents = torch::randn(latent_shape, generator).to(device);
    torch::Tensor labels;
    if (model->label_dim() > 0)
      labels = torch::one_hot(torch::randint(model->label_dim(), {b}, generator), model->label_dim())
                   .to(device, torch::kFloat32);
    const auto x = run_sampler(model, sampler, latents, generator, labels);
    const auto feats = detector.features(float_to_images(x));
    require(torch::isfinite(feats).all().item<bool>(),
            "evaluation: generated images gave NaN/Inf features (did sampling diverge?)");
    acc.add(feats);
    if (keep_features) kept.push_back(feats.cpu());
  }
  if (was_training) model->train();
  GeneratedFeatures out;
  out.stats = acc.finish();
  if (keep_features) out.features = torch::cat(kept);
  return out;
}

FeatureStats image_feature_stats(FeatureDetector& detector, const torch::Tensor& images, int64_t batch) {
  require(images.dim() == 4 && images.scalar_type() == torch::kUInt8, "expected uint8 images [N, C, H, W], got ",
          images.sizes(), " ", images.scalar_type());
  require(batch >= 1, "batch must be positive");
  FeatureStatsAccumulator acc(detector.dim());
  for (int64_t start = 0; start < images.size(0); start += batch)
    acc.add(detector.features(images.slice(0, start, std::min(start + batch, images.size(0)))));
  return acc.finish();
}

FeatureStats reference_stats(const EvalConfig& config, const Json& root, FeatureDetector& detector) {
  if (!config.ref.empty()) return read_feature_stats(config.ref);
  auto data_config = DataConfig::from_config(root);
  const auto data = load_dataset(data_config);
  require(data.is_image(), "reference statistics need an image dataset, [data].dataset is '", data_config.dataset,
          "'");
  return image_feature_stats(detector, data.samples, config.batch);
}

std::function<Json(Denoiser&, int64_t)> make_evaluation_hook(const Json& root) {
  const auto config = EvalConfig::from_config(root);
  struct State {
    std::unique_ptr<FeatureDetector> detector;
    FeatureStats reference;
  };
  auto state = std::make_shared<State>();
  // Validate the sampler settings now, so a bad [sample] section fails before training starts.
  for (auto steps : config.steps) (void)sampler_for_steps(root, steps, config.sigma_mid);
  return [config, root, state](Denoiser& model, int64_t step) -> Json {
    if (!state->detector) {
      state->detector = load_detector(config.metric, config.detector, model_device(model));
      state->reference = reference_stats(config, root, *state->detector);
    }
    Json result = Json::object();
    for (auto steps : config.steps) {
      const auto sampler = sampler_for_steps(root, steps, config.sigma_mid);
      // The same latents at every evaluation, so successive values differ only through the model.
      const auto generated = generated_features(model, sampler, *state->detector, config.n, config.batch,
                                                static_cast<uint64_t>(config.seed));
      result[metric_key(config.metric, steps)] = frechet_distance(generated.stats, state->reference);
    }
    (void)step;
    return result;
  };
}

}  // namespace onestep
