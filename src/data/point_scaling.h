#pragma once
// The affine map between a user's point coordinates and the model's: points enter training shifted to zero mean
// and scaled so that their spread matches sigma_data (EDM's preconditioning assumes data of std sigma_data,
// docs/methods.md section 1); `sample` and `eval` map generated points back. The map travels in the model's metadata.
#include "config/config.h"

#include <torch/types.h>

#include <string>
#include <vector>

namespace onestep {

struct PointScaling {
  // model = (user - mean) * scale, per coordinate; empty mean = the identity (images, or data.normalize = none).
  std::vector<double> mean;
  std::vector<double> scale;

  bool is_identity() const { return mean.empty(); }
  // mode: "isotropic" (one scale: the mean per-coordinate variance becomes sigma_data^2, shapes keep their
  // proportions), "per-dimension" (every coordinate gets std sigma_data) or "none" (the identity).
  static PointScaling fit(const torch::Tensor& points, double sigma_data, const std::string& mode);
  torch::Tensor to_model(const torch::Tensor& user) const;
  torch::Tensor to_user(const torch::Tensor& model) const;
  Json to_json() const;  // {"mean": [...], "scale": [...]}
  static PointScaling from_json(const Json& j, const std::string& where);
  // Equal up to a relative 1e-6 (the same data read twice gives the same map).
  bool same_as(const PointScaling& other) const;
  std::string describe() const;  // "mean (1, 2), scale (0.3162, 0.3162)" or "identity"
};

}  // namespace onestep
