#pragma once
// Sampling + scoring in one pass (SPEC section 6): generate images with a sampler, quantize them as the field does,
// stream their features into float64 statistics and compare with reference statistics. [eval] section.
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
  std::string metric = "fd-fmnist";  // fd-fmnist | fid
  int64_t n = 10000;                 // images generated per evaluation (papers: 50000)
  int64_t batch = 500;
  std::string detector;              // empty: fd-fmnist uses assets/fmnist_classifier.safetensors; fid requires it
  std::string ref;                   // reference statistics .npz; empty: computed once from the [data] dataset
  int64_t every = 0;                 // the trainer evaluates every `every` steps (0 = never)
  std::vector<int64_t> steps = {1, 2};  // sampler step counts evaluated
  double sigma_mid = 0.821;          // the 2-step sampler's intermediate sigma (CIFAR-10 value, iCT/ECT)
  int64_t seed = 0;
  static EvalConfig from_config(const Json& root);  // reads [eval], rejects unknown keys
  Json to_json() const;
};

// The [sample] section's sampler with its step count set: consistency samplers visit {sigma_max} (1 step) or
// {sigma_max, sigma_mid} (2 steps); Heun/Euler get `steps` levels.
SamplerConfig sampler_for_steps(const Json& root, int64_t steps, double sigma_mid);

// Streams n generated images (in batches) through the detector. Images are also returned when keep_images.
struct GeneratedFeatures {
  FeatureStats stats;
  torch::Tensor features;  // [n, D] float32 when keep_features, else undefined
};
GeneratedFeatures generated_features(Denoiser& model, const SamplerConfig& sampler, FeatureDetector& detector,
                                     int64_t n, int64_t batch, uint64_t seed, bool keep_features = false);

// Statistics of a set of uint8 images [N, C, H, W].
FeatureStats image_feature_stats(FeatureDetector& detector, const torch::Tensor& images, int64_t batch);

// Reference statistics: [eval].ref when set, else computed from the configuration's [data] dataset.
FeatureStats reference_stats(const EvalConfig& config, const Json& root, FeatureDetector& detector);

// The trainer's evaluation hook: returns {"fd_fmnist_1step": x, "fd_fmnist_2step": y} (or fid_...). Detector and
// reference statistics are loaded on the first call and kept.
std::function<Json(Denoiser&, int64_t)> make_evaluation_hook(const Json& root);

std::string metric_key(const std::string& metric, int64_t steps);  // "fd_fmnist_1step", "fid_2step"

}  // namespace onestep
