#pragma once
// Sampling + scoring in one pass (docs/methods.md 10): generate images with a sampler, quantize them as the field does,
// stream their features into float64 statistics and compare with reference statistics. 2-D point models are scored
// by the sliced Wasserstein distance to fresh draws of their toy distribution. [eval] section.
#include "config/config.h"
#include "metrics/detector.h"
#include "metrics/feature_stats.h"
#include "precond/model.h"
#include "samplers/sampler.h"

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace onestep {

struct EvalConfig {
  std::string metric = "fd-fmnist";  // fd-fmnist | fid | swd (2-D points)
  int64_t n = 10000;                 // images generated per evaluation (papers: 50000)
  int64_t batch = 500;
  std::string detector;              // empty: fd-fmnist uses assets/fmnist_classifier.safetensors; fid requires it
  std::string ref;                   // reference statistics .npz (swd: reference points .npy); empty: from [data]
  int64_t every = 0;                 // the trainer evaluates every `every` steps (0 = never)
  std::vector<int64_t> steps = {1, 2};  // sampler step counts evaluated
  double sigma_mid = 0.821;          // the 2-step sampler's intermediate sigma (CIFAR-10 value, iCT/ECT)
  int64_t seed = 0;
  static EvalConfig from_config(const Json& root);  // reads [eval], rejects unknown keys
  Json to_json() const;
};

class Communicator;

// Streams n generated images (in batches) through the detector. Features are also returned when keep_features.
// A non-empty `progress_label` reports the stages on stderr: "<label> generate+features" as a progress line with the
// seconds spent in each, then "<label> statistics" (mean and covariance). Batch k's latents, labels and noise come
// from batch_generator(seed, k). With a communicator the batches are sharded over its ranks
// (distributed/sharding.h) and rank 0 gathers the features: it alone gets the statistics (and features), the same
// as a single process computes; the other ranks get empty ones.
struct GeneratedFeatures {
  FeatureStats stats;
  torch::Tensor features;  // [n, D] float32 when keep_features, else undefined
};
GeneratedFeatures generated_features(Denoiser& model, const SamplerConfig& sampler, FeatureDetector& detector,
                                     int64_t n, int64_t batch, uint64_t seed, bool keep_features = false,
                                     const std::string& progress_label = {}, Communicator* communicator = nullptr);

// Statistics of a set of uint8 images [N, C, H, W]; a non-empty `progress_label` reports the feature stage.
FeatureStats image_feature_stats(FeatureDetector& detector, const torch::Tensor& images, int64_t batch,
                                 const std::string& progress_label = {});

// Reference statistics: [eval].ref when set, else computed from the configuration's [data] dataset, whose images
// must have `sample_shape` ([C, H, W]) when it is given (a model's), else one line names both shapes.
FeatureStats reference_stats(const EvalConfig& config, const Json& root, FeatureDetector& detector,
                             const std::string& progress_label = {}, const std::vector<int64_t>& sample_shape = {});

// 2-D models. n points from the sampler, batch k's latents from batch_generator(seed, k): [n, D] float32 on CPU.
// With a communicator: sharded, rank 0 gets all n points, the other ranks an undefined tensor.
torch::Tensor generated_points(Denoiser& model, const SamplerConfig& sampler, int64_t n, int64_t batch, uint64_t seed,
                               const std::string& progress_label = {}, Communicator* communicator = nullptr);

// Reference points for swd: [eval].ref (.npy) when set, else n fresh points of the [data] toy distribution drawn
// with a seed the training data never uses (draw 0, 1, ... are independent sets, for the data-vs-data floor).
torch::Tensor reference_points(const EvalConfig& config, const Json& root, int64_t draw = 0);

// The sliced Wasserstein-2 distance used for points: 1000 random directions, fixed projection seed.
double points_distance(const torch::Tensor& a, const torch::Tensor& b);

// The trainer's evaluation hook: returns {"fd_fmnist_1step": x, "fd_fmnist_2step": y} (or fid_..., swd_...).
// Detector and reference statistics (or points) are loaded on the first call and kept. `verbose` reports the
// stages of each evaluation on stderr (generate, features, statistics).
std::function<Json(Denoiser&, int64_t)> make_evaluation_hook(const Json& root, bool verbose = false);

// One line on stderr for a finished stage: "<label> <stage> in 1.23 s".
void report_stage(const std::string& label, const std::string& stage, double seconds);

// "fd_fmnist_1step", "fid_2step", "swd_1step"; "fd_fmnist_proxy_1step" for fd-fmnist on images that are not
// Fashion-MNIST (metrics/metric_names.h).
std::string metric_key(const std::string& metric, int64_t steps, const std::vector<int64_t>& image_shape = {},
                       const std::string& dataset = "fashion-mnist");

}  // namespace onestep
