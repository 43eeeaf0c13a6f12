// Metric names and the default metric of `onestep eval` (metrics/metric_names.h).
#include "metrics/metric_names.h"

#include "core/error.h"

namespace onestep {

std::string shape_text_x(const std::vector<int64_t>& shape) {
  std::string out;
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? " x " : "") + std::to_string(shape[i]);
  return out;
}

bool is_fashion_mnist_like(const std::vector<int64_t>& image_shape, const std::string& dataset) {
  if (!dataset.empty() && dataset != "fashion-mnist") return false;
  if (image_shape.empty()) return true;
  // 32 x 32: Fashion-MNIST padded by the GPU presets (data.resolution = 32, pad), which the classifier crops back.
  return image_shape.size() == 3 && image_shape[0] == 1 && image_shape[1] == image_shape[2] &&
         (image_shape[1] == 28 || image_shape[1] == 32);
}

MetricName metric_name(const std::string& metric, const std::vector<int64_t>& image_shape,
                       const std::string& dataset) {
  if (metric == "fid") return {"fid", "FID", "fid_", ""};
  if (metric == "swd") return {"swd", "SWD", "swd_", ""};
  require(metric == "fd-fmnist", "unknown metric '", metric, "' (choices: fid, fd-fmnist, swd)");
  if (is_fashion_mnist_like(image_shape, dataset)) return {"fd-fmnist", "FD-FMNIST", "fd_fmnist_", ""};
  const std::string what = dataset.empty() || dataset == "fashion-mnist" ? shape_text_x(image_shape) + " images"
                                                                         : "images of data.dataset = " + dataset;
  return {"fd-fmnist-proxy", "FD in Fashion-MNIST classifier features (proxy)", "fd_fmnist_proxy_",
          "these are " + what + ", not Fashion-MNIST: the Fashion-MNIST classifier sees them grayscaled and resized "
          "to 28 x 28, so this distance is a proxy, comparable only between models of the same data (FID: --metric "
          "fid --detector inception-2015-12-05.pt, docs/evaluation.md)"};
}

std::string default_metric(const std::string& configured, const std::vector<int64_t>& sample_shape,
                           const std::string& dataset, bool detector_given) {
  if (sample_shape.size() == 1) return "swd";
  if (is_fashion_mnist_like(sample_shape, dataset)) return configured;
  if (configured == "fid" || detector_given) return "fid";
  fail("eval: which metric for ", shape_text_x(sample_shape), " images",
       dataset.empty() ? std::string() : " (data.dataset = " + dataset + ")",
       "? FID needs the Inception network: --detector inception-2015-12-05.pt, the TorchScript file EDM uses "
       "(download link in docs/evaluation.md), or pytorch-fid's weights that tools/convert_inception.py converts "
       "to .safetensors; --metric fd-fmnist gives a proxy in Fashion-MNIST classifier features instead");
}

}  // namespace onestep
