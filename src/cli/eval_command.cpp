#include "cli/commands.h"
#include "core/error.h"
#include "data/data_shape.h"
#include "data/dataset.h"
#include "distributed/communicator.h"
#include "distributed/sharding.h"
#include "io/image_io.h"
#include "io/npy.h"
#include "metrics/detector.h"
#include "metrics/evaluation.h"
#include "metrics/feature_stats.h"
#include "metrics/fmnist_classifier.h"
#include "metrics/frechet.h"
#include "metrics/image_set.h"
#include "metrics/metric_names.h"
#include "metrics/precision_recall.h"
#include "precond/model.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <iostream>
#include <memory>

namespace onestep::cli {

namespace {

namespace fs = std::filesystem;

struct EvalOptions {
  ConfigOptions config;
  std::string ckpt, weights, images, ref, metric, detector, device = "auto", real, write_ref, json;
  std::string cpu_wait = "auto";
  std::vector<int64_t> steps;
  int64_t n = 0, batch = 0, seeds = 1;
  bool pr = false;
  DistributedOptions distributed;
};

struct StatsOptions {
  ConfigOptions data;
  std::string images, metric = "fd-fmnist", detector, out, device = "auto", cpu_wait = "auto";
  int64_t batch = 500, limit = 0;
};

struct ClassifierOptions {
  std::string out;
  ClassifierTraining training;
};

// [data].dataset when a configuration or the checkpoint's run names the data ("" when nothing does: the images
// are then judged by their shape alone).
std::string named_dataset(const Json& root) {
  return root.contains("data") ? DataConfig::from_config(root).dataset : std::string();
}

// Without --metric the metric follows what is scored (metrics/metric_names.h): the model's samples or the images of
// --images, loaded here (into `model` / `images`) to see their shape. A configured swd is kept as it is.
void choose_default_metric(const EvalOptions& o, Json& root, Denoiser& model, torch::Tensor& images) {
  const std::string configured = EvalConfig::from_config(root).metric;
  if (!o.metric.empty() || configured == "swd") return;
  std::vector<int64_t> shape;
  if (!o.ckpt.empty()) {
    model = load_model(o.ckpt, o.weights);
    shape = model->sample_shape();
  } else {
    images = load_image_set(o.images, o.n);
    shape.assign(images.sizes().begin() + 1, images.sizes().end());
  }
  const bool detector_given = !EvalConfig::from_config(root).detector.empty();
  root["eval"]["metric"] = default_metric(configured, shape, named_dataset(root), detector_given);
}

// The metric's name for these images, with its one-line note on stderr where it is a proxy.
MetricName announce_metric(const std::string& metric, const std::vector<int64_t>& shape, const Json& root,
                           bool main_rank) {
  MetricName name = metric_name(metric, shape, named_dataset(root));
  if (!name.note.empty() && main_rank) std::cerr << "note: " << name.note << "\n";
  return name;
}

// Statistics whose dimension the detector does not give come from another detector: say which flags pair them.
void check_reference_dim(const FeatureStats& reference, const FeatureDetector& detector, const EvalConfig& config) {
  require(reference.mu.size(0) == detector.dim(), "eval: --ref ", config.ref, " holds ", reference.mu.size(0),
          "-d statistics but --metric ", config.metric, " gives ", detector.dim(), "-d features (",
          detector.dim() == 2048 ? "Inception" : "the Fashion-MNIST classifier", "): make the statistics with "
          "'onestep eval stats --metric ", config.metric, "' and the same --detector, or pick the metric they were "
          "made with (2048-d: --metric fid --detector inception-2015-12-05.pt; 128-d: --metric fd-fmnist)");
}

// Applies the command-line values over the [eval] section, so flags and config files mean the same thing.
// Without --config a checkpoint's recorded run settings ([data], [sample], [eval]) stand in for the preset, so that
// a model is scored on its own data with the sampler it was trained for; `recorded` says whether they did.
Json eval_root(const EvalOptions& o, bool* recorded) {
  Json fallback = Json::object();
  if (o.config.config.empty() && !o.ckpt.empty()) {
    const Json run = recorded_run_config(o.ckpt);
    for (const char* section : {"data", "sample", "eval"})
      if (run.contains(section)) fallback[section] = run[section];
  }
  *recorded = !fallback.empty();
  Json root = load_config(o.config, std::move(fallback));
  auto& eval = root["eval"];
  if (!eval.is_object()) eval = Json::object();
  if (!o.metric.empty()) eval["metric"] = o.metric;
  if (o.n > 0) eval["n"] = o.n;
  if (o.batch > 0) eval["batch"] = o.batch;
  if (!o.detector.empty()) eval["detector"] = o.detector;
  if (!o.ref.empty()) eval["ref"] = o.ref;
  if (!o.steps.empty()) eval["steps"] = o.steps;
  return root;
}

torch::Tensor real_features(const EvalOptions& o, const Json& root, FeatureDetector& detector, int64_t n,
                            int64_t batch) {
  torch::Tensor images;
  if (!o.real.empty()) {
    images = load_image_set(o.real, n);
  } else {
    images = load_dataset(DataConfig::from_config(root)).samples;
    require(images.dim() == 4, "--pr needs real images: pass --real DIR|FILE.npz or an image [data] section");
    images = images.slice(0, 0, std::min(n, images.size(0)));
  }
  return extract_features(detector, images, batch);
}

// --json FILE: one JSON line per value, at full precision (the printed lines round to 4 decimals).
void append_json(const EvalOptions& o, const Json& record) {
  if (o.json.empty()) return;
  std::ofstream out(o.json, std::ios::app);
  require(out.good(), "eval: --json: cannot write '", o.json, "'");
  out << record.dump() << "\n";
}

// Names the stages of one evaluation on stderr: "1-step FD-FMNIST seed 0 generate+features ...".
std::string stage_label(int64_t steps, const std::string& metric, int64_t seed) {
  return std::to_string(steps) + "-step " + metric + " seed " + std::to_string(seed);
}

void print_summary(int64_t steps, const std::string& label, int64_t n, const std::vector<double>& values,
                   double floor = 0.0) {
  double mean = 0.0, var = 0.0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  for (double v : values) var += (v - mean) * (v - mean);
  const double sd = values.size() > 1 ? std::sqrt(var / static_cast<double>(values.size() - 1)) : 0.0;
  std::printf("%lld-step %s (n = %lld, %zu seeds): %.4f +- %.4f, best %.4f", static_cast<long long>(steps),
              label.c_str(), static_cast<long long>(n), values.size(), mean, sd,
              *std::min_element(values.begin(), values.end()));
  if (floor > 0) std::printf(", %.2fx floor", mean / floor);
  std::printf("\n");
}

// 2-D point models: sliced Wasserstein-2 distance to fresh draws of the toy distribution (or to --ref POINTS.npy),
// beside the data-vs-data floor.
void run_points_eval(const EvalOptions& o, const Json& root, const EvalConfig& config, Communicator* communicator,
                     const torch::Device& device) {
  require(!o.pr, "--pr is for image metrics, not swd");
  if (communicator != nullptr && !communicator->is_main()) {
    // The other ranks only generate their share of the points (below); rank 0 reads, compares and writes.
    if (o.ckpt.empty()) return;
    Denoiser model = load_model(o.ckpt, o.weights);
    model->to(device);
    for (const auto steps : config.steps)
      for (int64_t s = 0; s < o.seeds; ++s)
        (void)generated_points(model, sampler_for_steps(root, steps, config.sigma_mid), config.n, config.batch,
                               static_cast<uint64_t>(config.seed + s), {}, communicator);
    return;
  }
  const auto reference = reference_points(config, root);
  double floor = 0.0;
  if (config.ref.empty()) {
    floor = points_distance(reference, reference_points(config, root, 1));
    std::printf("SWD floor (two fresh draws of %lld points): %.4f\n", static_cast<long long>(reference.size(0)),
                floor);
  }
  Denoiser model{nullptr};
  if (!o.ckpt.empty()) model = load_model(o.ckpt, o.weights);
  if (model)
    require(model->sample_shape() == std::vector<int64_t>{reference.size(1)}, "eval: the model makes ",
            model_shape_keys_text(model->model_config()), " points but the reference ",
            config.ref.empty() ? "(the [data] distribution)" : "--ref " + config.ref, " holds ", reference.size(1),
            "-D points: give reference points of the model's dimension");
  if (!o.write_ref.empty()) {
    const fs::path out = o.write_ref;
    if (out.extension() == ".png") {
      // In the model's window when there is one, so that the data's image lines up with the samples'.
      const PointScaling scaling = model ? model->point_scaling() : PointScaling{};
      const double sigma_data = model ? model->precond().sigma_data : 0.5;
      write_png(out, points_density_image(scaling, sigma_data, reference));
    } else {
      require(out.extension() == ".npy", "eval: --write-ref must end in .npy or .png, got '", o.write_ref, "'");
      write_npy(out, reference.contiguous());
    }
    std::printf("wrote the %lld reference points to %s\n", static_cast<long long>(reference.size(0)),
                o.write_ref.c_str());
  }
  if (!o.images.empty()) {
    auto points = read_npy(o.images);
    require(points.dim() == 2 && points.size(1) == reference.size(1), "eval: ", o.images, " holds ",
            points.sizes(), "; expected points [N, ", reference.size(1), "]");
    if (o.n > 0) points = points.slice(0, 0, std::min(o.n, points.size(0)));
    require(torch::isfinite(points).all().item<bool>(), "eval: ", o.images, " holds NaN/Inf points");
    const double value = points_distance(points.to(torch::kFloat32), reference);
    std::printf("SWD of %lld points from %s: %.4f\n", static_cast<long long>(points.size(0)), o.images.c_str(), value);
    append_json(o, Json{{"metric", "swd"}, {"images", o.images}, {"n", points.size(0)}, {"value", value}});
    return;
  }
  model->to(device);
  for (const auto steps : config.steps) {
    const auto sampler = sampler_for_steps(root, steps, config.sigma_mid);
    std::vector<double> values;
    for (int64_t s = 0; s < o.seeds; ++s) {
      const auto points = generated_points(model, sampler, config.n, config.batch,
                                           static_cast<uint64_t>(config.seed + s),
                                           stage_label(steps, "SWD", config.seed + s), communicator);
      values.push_back(points_distance(points, reference));
      std::printf("%lld-step SWD (%s), seed %lld: %.4f\n", static_cast<long long>(steps), enum_name(sampler.kind),
                  static_cast<long long>(config.seed + s), values.back());
      append_json(o, Json{{"metric", "swd"}, {"steps", steps}, {"seed", config.seed + s}, {"n", config.n},
                          {"value", values.back()}});
      std::fflush(stdout);
    }
    print_summary(steps, "SWD", config.n, values, floor);
  }
}

void print_pr(const PrecisionRecall& pr) {
  std::printf("  precision %.4f  recall %.4f  (k = 3)\n", pr.precision, pr.recall);
}

// --images: the images' features (sharded under a launcher) against the reference.
void score_images(const EvalOptions& o, const Json& root, const EvalConfig& config, const torch::Tensor& images,
                  const MetricName& name, FeatureDetector& detector, const FeatureStats& reference,
                  Communicator* communicator) {
  const SampleRange range = own_samples(communicator, images.size(0), config.batch);
  // A rank may have no batch at all (fewer batches than ranks).
  auto features = range.size() > 0
                      ? extract_features(detector, images.slice(0, range.begin, range.end), config.batch)
                      : torch::empty({0, detector.dim()});
  if (communicator) {
    features = gather_rows_to_main(communicator, features.cpu().to(torch::kFloat32), images.size(0), config.batch,
                                   "gather of the image features");
    if (!communicator->is_main()) return;
  }
  const double fd = frechet_distance(compute_feature_stats(features), reference);
  std::printf("%s of %lld images from %s: %.4f\n", name.label.c_str(), static_cast<long long>(images.size(0)),
              o.images.c_str(), fd);
  append_json(o, Json{{"metric", name.id}, {"images", o.images}, {"n", images.size(0)}, {"value", fd}});
  if (o.pr) print_pr(precision_recall(real_features(o, root, detector, images.size(0), config.batch), features));
}

void run_eval(const EvalOptions& o) {
  require(o.ckpt.empty() != o.images.empty(), "eval: pass exactly one of --ckpt FILE or --images DIR|FILE.npz");
  require(o.seeds >= 1, "--seeds must be at least 1");
  bool recorded = false;
  Json root = eval_root(o, &recorded);
  Denoiser model{nullptr};
  torch::Tensor images;
  choose_default_metric(o, root, model, images);
  const auto config = EvalConfig::from_config(root);
  for (const auto steps : config.steps) (void)sampler_for_steps(root, steps, config.sigma_mid);  // fail early
  if (config.metric != "swd")
    require(o.write_ref.empty(), "eval: --write-ref writes 2-D reference points (metric swd), not images");
  const LaunchEnv launch = launch_environment();
  const torch::Device device = configure_command_process(o.device, o.cpu_wait, launch);
  // FID's reference: --ref, or the images of a [data] section the user or the checkpoint's run named.
  if (config.metric == "fid")
    require(!config.ref.empty() || root.contains("data"), "eval: FID needs reference statistics: --ref ref.npz "
            "(make one with 'onestep eval stats'), or --config whose [data] images are the reference");
  // Under a launcher the images (or points) are split over the ranks in whole batches; rank 0 gathers their
  // features (or points), computes the numbers and prints them. Every batch has its own seed, so the numbers are
  // those of one process.
  const std::shared_ptr<Communicator> communicator = join_launched_job(o.distributed, launch, device);
  const bool main_rank = communicator == nullptr || communicator->is_main();
  if (recorded && main_rank)
    std::cerr << "note: [data], [sample] and [eval] as recorded with " << o.ckpt
              << " (the run's own settings; --config to choose others)\n";
  if (config.metric == "swd") return run_points_eval(o, root, config, communicator.get(), device);
  auto detector = load_detector(config.metric, config.detector, device);
  std::vector<int64_t> shape;
  if (!o.images.empty()) {
    if (!images.defined()) images = load_image_set(o.images, o.n);
    shape.assign(images.sizes().begin() + 1, images.sizes().end());
  } else {
    if (!model) model = load_model(o.ckpt, o.weights);
    shape = model->sample_shape();
  }
  const MetricName name = announce_metric(config.metric, shape, root, main_rank);
  FeatureStats reference;
  if (main_rank) {
    reference = reference_stats(config, root, *detector, "reference", shape);
    check_reference_dim(reference, *detector, config);
  }
  if (!o.images.empty()) return score_images(o, root, config, images, name, *detector, reference, communicator.get());
  model->to(device);
  torch::Tensor real;
  if (o.pr && main_rank) real = real_features(o, root, *detector, config.n, config.batch);
  for (const auto steps : config.steps) {
    const auto sampler = sampler_for_steps(root, steps, config.sigma_mid);
    std::vector<double> values;
    for (int64_t s = 0; s < o.seeds; ++s) {
      const std::string stage = stage_label(steps, name.label, config.seed + s);
      const auto generated =
          generated_features(model, sampler, *detector, config.n, config.batch, static_cast<uint64_t>(config.seed + s),
                             o.pr, main_rank ? stage : std::string(), communicator.get());
      if (!main_rank) continue;
      const auto start = std::chrono::steady_clock::now();
      values.push_back(frechet_distance(generated.stats, reference));
      append_json(o, Json{{"metric", name.id}, {"steps", steps}, {"seed", config.seed + s}, {"n", config.n},
                          {"value", values.back()}});
      report_stage(stage, "Frechet distance",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      std::printf("%lld-step %s, seed %lld: %.4f\n", static_cast<long long>(steps), name.label.c_str(),
                  static_cast<long long>(config.seed + s), values.back());
      if (o.pr) print_pr(precision_recall(real, generated.features));
      std::fflush(stdout);
    }
    if (main_rank) print_summary(steps, name.label, config.n, values);
  }
}

void run_stats(const StatsOptions& o) {
  require(!o.out.empty(), "eval stats: --out FILE.npz is required");
  require(o.data.config.empty() != o.images.empty(), "eval stats: pass exactly one of --data CONFIG or --images PATH");
  const auto device = configure_command_process(o.device, o.cpu_wait, LaunchEnv{});
  auto detector = load_detector(o.metric, o.detector, device);
  torch::Tensor images;
  if (!o.images.empty()) {
    images = load_image_set(o.images, o.limit);
  } else {
    const auto data = load_dataset(DataConfig::from_config(load_config(o.data)));
    require(data.is_image(), "eval stats: the [data] dataset is not an image dataset");
    images = o.limit > 0 ? data.samples.slice(0, 0, std::min(o.limit, data.size())) : data.samples;
  }
  const auto stats = image_feature_stats(*detector, images, o.batch, "stats");
  write_feature_stats(o.out, stats);
  std::vector<int64_t> shape(images.sizes().begin() + 1, images.sizes().end());
  const MetricName name = metric_name(o.metric, shape, o.images.empty() ? named_dataset(load_config(o.data)) : "");
  if (!name.note.empty()) std::cerr << "note: " << name.note << "\n";
  std::printf("wrote %s: %s statistics of %lld images (%lld-d features)\n", o.out.c_str(), name.label.c_str(), static_cast<long long>(stats.count),
              static_cast<long long>(stats.mu.size(0)));
}

// The options of `onestep eval` itself (scoring a model or a set of images), with its examples.
void add_eval_options(CLI::App& command, EvalOptions& options) {
  add_config_options(command, options.config, false);
  command.add_option("--ckpt", options.ckpt, "model weights (.safetensors) to sample from");
  command.add_option("--weights", options.weights,
                     "weight set of a training checkpoint: raw or an EMA name (default: first EMA)");
  command.add_option("--images", options.images,
                     "evaluate existing images: a directory of PNG/JPEG or an .npz (swd: points .npy)");
  command.add_option("--steps", options.steps, "sampler step counts, e.g. 1,2 (default [eval].steps)")
      ->delimiter(',');
  command.add_option("--n", options.n, "images generated per evaluation (default [eval].n = 10000)");
  command.add_option("--batch", options.batch, "batch size for sampling and features (default 500)");
  command.add_option("--ref", options.ref, "reference statistics .npz (mu, sigma); swd: reference points .npy");
  command.add_option("--metric", options.metric,
                     "fid | fd-fmnist | swd (2-D points). Default: swd for points, [eval].metric (fd-fmnist) on "
                     "Fashion-MNIST, fid on other images when a detector is given (docs/evaluation.md)");
  command.add_option("--detector", options.detector,
                     "feature network: inception-2015-12-05.pt, a converted .safetensors, or the FMNIST classifier");
  command.add_option("--seeds", options.seeds, "repeat over this many seeds; prints mean +- std")
      ->check(CLI::PositiveNumber);
  command.add_option("--write-ref", options.write_ref,
                     "swd: also write the reference points as FILE.npy, or as a density image FILE.png (in the "
                     "window of --ckpt's samples)");
  command.add_flag("--pr", options.pr, "also report improved precision and recall (k = 3)");
  command.add_option("--real", options.real, "real images for --pr (default: the [data] dataset)");
  command.add_option("--device", options.device, "auto | cpu | cuda");
  add_cpu_wait_option(command, options.cpu_wait);
  command.add_option("--json", options.json,
                     "also append each value as a JSON line (metric, steps, seed, n, value at full precision)");
  add_distributed_options(command, options.distributed);
  command.footer(
      "Examples:\n"
      "  onestep eval --ckpt model.safetensors --steps 1,2 --n 10000 --metric fd-fmnist --seeds 3\n"
      "  onestep launch --nproc 8 -- eval --ckpt model.safetensors --n 50000 --ref cifar10.npz --metric fid \\\n"
      "               --detector inception-2015-12-05.pt   (sharded over 8 processes: docs/distributed.md)\n"
      "  onestep eval --ckpt model.safetensors --steps 1,2 --n 50000 --ref cifar10.npz --metric fid \\\n"
      "               --detector inception-2015-12-05.pt\n"
      "  onestep eval --images samples.npz --ref cifar10.npz --metric fid --detector inception-2015-12-05.pt\n"
      "  onestep eval stats --data fmnist-ict-cpu --metric fd-fmnist --out fmnist-train.npz\n"
      "  onestep eval --config points-ict --ckpt runs/points-ict/model.safetensors --metric swd --steps 1,2\n"
      "  onestep eval --config points-edm --ckpt runs/points-edm/model.safetensors --metric swd --steps 18\n"
      "  onestep eval train-classifier --out assets/fmnist_classifier.safetensors\n"
      "Without --ref, FD-FMNIST and FID compare against the statistics of the [data] images (a run's own data);\n"
      "fd-fmnist on images other than Fashion-MNIST is printed as a proxy, not as FD-FMNIST.\n"
      "SWD (sliced Wasserstein-2, 1000 directions) against n fresh points of the [data] toy distribution, and it\n"
      "prints the floor: the SWD between two such fresh draws.");
}

// `onestep eval stats`: reference statistics of a dataset or an image set.
CLI::App* add_stats_subcommand(CLI::App& command) {
  auto* stats = command.add_subcommand("stats", "Reference statistics (mu, sigma) of a dataset or image set");
  auto stats_options = std::make_shared<StatsOptions>();
  stats->add_option("--data", stats_options->data.config, "configuration (file or preset) whose [data] is used");
  stats->add_option("--set,-s", stats_options->data.overrides, "override a key, e.g. --set data.split=test");
  stats->add_option("--images", stats_options->images, "a directory of PNG/JPEG or an .npz of images");
  stats->add_option("--metric", stats_options->metric, "fid | fd-fmnist")->check(CLI::IsMember({"fid", "fd-fmnist"}));
  stats->add_option("--detector", stats_options->detector, "feature network file (see 'onestep eval --help')");
  stats->add_option("--out", stats_options->out, "output .npz (mu, sigma as float64; numpy/pytorch-fid/EDM read it)")
      ->required();
  stats->add_option("--batch", stats_options->batch, "images per feature batch")->check(CLI::PositiveNumber);
  stats->add_option("--limit", stats_options->limit, "use only the first N images");
  stats->add_option("--device", stats_options->device, "auto | cpu | cuda");
  add_cpu_wait_option(*stats, stats_options->cpu_wait);
  stats->footer(
      "Examples:\n"
      "  onestep eval stats --data fmnist-ict-cpu --out fmnist-train.npz\n"
      "  onestep eval stats --data fmnist-ict-cpu --set data.split=test --out fmnist-test.npz\n"
      "  onestep eval stats --images cifar10-train/ --metric fid --detector inception-2015-12-05.pt --out cifar.npz");
  stats->callback([stats_options] { run_stats(*stats_options); });
  return stats;
}

// `onestep eval fd`: the Frechet distance between two statistics files.
CLI::App* add_fd_subcommand(CLI::App& command) {
  auto* fd = command.add_subcommand("fd", "Frechet distance between two statistics files");
  auto fd_files = std::make_shared<std::vector<std::string>>();
  fd->add_option("files", *fd_files, "two .npz files with mu and sigma")->required()->expected(2);
  fd->footer("Example:\n  onestep eval fd fmnist-train10k.npz fmnist-test.npz");
  fd->callback([fd_files] {
    const auto a = read_feature_stats(fd_files->at(0));
    const auto b = read_feature_stats(fd_files->at(1));
    std::printf("%.6f\n", frechet_distance(a, b));
  });
  return fd;
}

// `onestep eval train-classifier`: the Fashion-MNIST classifier behind FD-FMNIST.
CLI::App* add_train_classifier_subcommand(CLI::App& command) {
  auto* train = command.add_subcommand("train-classifier", "Train the Fashion-MNIST classifier behind FD-FMNIST");
  auto classifier = std::make_shared<ClassifierOptions>();
  classifier->out = (assets_dir() / "fmnist_classifier.safetensors").string();
  train->add_option("--out", classifier->out, "output weights (.safetensors)")->capture_default_str();
  train->add_option("--epochs", classifier->training.epochs, "passes over the 60k training images")->capture_default_str()
      ->check(CLI::PositiveNumber);
  train->add_option("--seed", classifier->training.seed, "initialization and shuffling seed")->capture_default_str();
  train->add_option("--batch", classifier->training.batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--lr", classifier->training.lr, "peak Adam learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  train->add_option("--data-path", classifier->training.data_path, "Fashion-MNIST directory (default: Debian's)");
  train->footer("Example:\n  onestep eval train-classifier --out assets/fmnist_classifier.safetensors --epochs 6");
  train->callback([classifier] {
    auto result = train_fmnist_classifier(classifier->training, [](int64_t epoch, double accuracy) {
      std::printf("epoch %lld: test accuracy %.4f\n", static_cast<long long>(epoch + 1), accuracy);
      std::fflush(stdout);
    });
    save_fmnist_classifier(classifier->out, result.model, result.test_accuracy);
    std::printf("test accuracy %.4f after %.1f s; wrote %s\n", result.test_accuracy, result.seconds,
                classifier->out.c_str());
  });
  return train;
}

}  // namespace

void register_eval_command(CLI::App& app) {
  auto* command = app.add_subcommand("eval", "Evaluate a model or a set of images: FID or FD-FMNIST, precision/recall");
  command->require_subcommand(0, 1);
  auto options = std::make_shared<EvalOptions>();
  add_eval_options(*command, *options);
  CLI::App* stats = add_stats_subcommand(*command);
  CLI::App* fd = add_fd_subcommand(*command);
  CLI::App* train = add_train_classifier_subcommand(*command);
  command->callback([command, stats, fd, train, options] {
    if (command->got_subcommand(stats) || command->got_subcommand(fd) || command->got_subcommand(train)) return;
    run_eval(*options);
  });
}

}  // namespace onestep::cli
