#pragma once
// What each metric is called, so that no number is reported under another data set's name, and which metric
// `onestep eval` picks when none is asked for. docs/evaluation.md, "Which metric".
#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

// The Frechet distance in the Fashion-MNIST classifier's features is FD-FMNIST only where the images are what the
// classifier was trained on: Fashion-MNIST ([data].dataset = fashion-mnist) as one 28 x 28 channel, or padded to
// 32 x 32 (the GPU presets; the classifier crops the padding back off). On any other images the classifier sees
// them grayscaled and resized to 28 x 28: the same number is then a proxy, comparable only between models of the
// same data, and named so.
bool is_fashion_mnist_like(const std::vector<int64_t>& image_shape, const std::string& dataset);

struct MetricName {
  std::string id;          // "fid" | "fd-fmnist" | "fd-fmnist-proxy" | "swd": --json records, logs
  std::string label;       // "FID", "FD-FMNIST", "FD in Fashion-MNIST classifier features (proxy)", "SWD"
  std::string key_prefix;  // the metrics log's keys: "fid_", "fd_fmnist_", "fd_fmnist_proxy_", "swd_"
  std::string note;        // one line for the proxy (what it is, what to use instead); "" otherwise
};
// `metric` as configured (fid | fd-fmnist | swd) for images of `image_shape` ([C, H, W]; empty: not known, taken as
// Fashion-MNIST's) from `dataset` ([data].dataset; "" when the images come from elsewhere).
MetricName metric_name(const std::string& metric, const std::vector<int64_t>& image_shape = {},
                       const std::string& dataset = "fashion-mnist");

// The metric of `onestep eval` without --metric. `configured`: [eval].metric (the run's recorded one, or the
// default fd-fmnist); `sample_shape`: [D] for points, [C, H, W] for images; `detector_given`: --detector or
// [eval].detector. Points: swd. Fashion-MNIST-like images: `configured`. Any other images: FID when a detector is
// given or FID is configured; otherwise one line saying how to get the Inception network (or to ask for the
// proxy with --metric fd-fmnist).
std::string default_metric(const std::string& configured, const std::vector<int64_t>& sample_shape,
                           const std::string& dataset, bool detector_given);

// "3 x 32 x 32"
std::string shape_text_x(const std::vector<int64_t>& shape);

}  // namespace onestep
