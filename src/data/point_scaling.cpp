#include "data/point_scaling.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace onestep {
namespace {

torch::Tensor as_row(const std::vector<double>& values, const torch::Tensor& like) {
  return torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64)).to(like.device()).reshape({1, -1});
}

// One huge but finite outlier (a row of 1e30 among 1000 points) would set the scale by itself and put every other
// point at the mean: refused when the largest max(3, N / 100) rows hold more than half of the squared deviations
// (the isotropic mode: per row; per-dimension: per coordinate). Normal data stays far below: its top 1% of rows
// holds about 6% of the sum. Under 100 points the check is off: there a few rows may rightly hold most of it.
void refuse_dominated_spread(const torch::Tensor& x, const torch::Tensor& mean, const std::string& mode) {
  const int64_t n = x.size(0);
  if (n < 100) return;
  // Divided by the largest deviation first, so that squaring a finite 1e200 cannot overflow.
  const torch::Tensor deviation = x - mean;
  const double largest = deviation.abs().max().item<double>();
  if (!(largest > 0) || !std::isfinite(largest)) return;
  const torch::Tensor squared = (deviation / largest).square();
  const torch::Tensor per_row = mode == "isotropic" ? squared.sum(1, /*keepdim=*/true) : squared;  // [N, C]
  const int64_t k = std::max<int64_t>(3, n / 100);
  const auto [top, rows] = per_row.topk(k, 0);
  const torch::Tensor share = top.sum(0) / per_row.sum(0);
  const int64_t column = share.argmax().item<int64_t>();
  const double dominated = share[column].item<double>();
  if (!(dominated > 0.5)) return;
  std::ostringstream which;
  for (int64_t i = 0; i < std::min<int64_t>(k, 5); ++i) which << (i ? ", " : "") << rows[i][column].item<int64_t>();
  if (k > 5) which << ", ...";
  const std::string where = mode == "isotropic" ? "" : " of coordinate " + std::to_string(column);
  fail("data.normalize = ", mode, ": ", k, " of the ", n, " points (rows ", which.str(), ") hold ",
       std::lround(dominated * 100), "% of the spread", where,
       ", so the scale would squeeze every other point onto the mean: outliers? Remove them; if the tails are real, "
       "scale the points yourself robustly (by their median and median absolute deviation) and set "
       "data.normalize = none");
}

}  // namespace

PointScaling PointScaling::fit(const torch::Tensor& points, double sigma_data, const std::string& mode) {
  require(mode == "isotropic" || mode == "per-dimension" || mode == "none",
          "data.normalize must be isotropic, per-dimension or none, got '", mode, "'");
  if (mode == "none") return {};
  require(points.dim() == 2 && points.size(0) >= 2, "data.normalize: needs points [N >= 2, D], got ", points.sizes());
  require(sigma_data > 0, "data.normalize: sigma_data must be > 0, got ", sigma_data);
  const torch::Tensor x = points.to(torch::kFloat64).cpu();
  const torch::Tensor mean = x.mean(0);
  // Population variance (divide by N): the map is a property of the data set, not an estimate.
  refuse_dominated_spread(x, mean, mode);
  const torch::Tensor var = (x - mean).square().mean(0);
  PointScaling s;
  const int64_t d = x.size(1);
  const double mean_var = var.mean().item<double>();
  for (int64_t i = 0; i < d; ++i) {
    s.mean.push_back(mean[i].item<double>());
    const double v = mode == "isotropic" ? mean_var : var[i].item<double>();
    require(v > 0, "data.normalize: coordinate ", i, " of the points has zero variance (all points equal); use "
                   "data.normalize = none or isotropic");
    s.scale.push_back(sigma_data / std::sqrt(v));
  }
  return s;
}

torch::Tensor PointScaling::to_model(const torch::Tensor& user) const {
  if (is_identity()) return user;
  require(user.dim() == 2 && user.size(1) == static_cast<int64_t>(mean.size()), "point scaling of ", mean.size(),
          "-D points applied to a tensor of shape ", user.sizes());
  return ((user.to(torch::kFloat64) - as_row(mean, user)) * as_row(scale, user)).to(user.scalar_type());
}

torch::Tensor PointScaling::to_user(const torch::Tensor& model) const {
  if (is_identity()) return model;
  require(model.dim() == 2 && model.size(1) == static_cast<int64_t>(mean.size()), "point scaling of ", mean.size(),
          "-D points applied to a tensor of shape ", model.sizes());
  return (model.to(torch::kFloat64) / as_row(scale, model) + as_row(mean, model)).to(model.scalar_type());
}

Json PointScaling::to_json() const { return Json{{"mean", mean}, {"scale", scale}}; }

PointScaling PointScaling::from_json(const Json& j, const std::string& where) {
  const auto numbers = [&](const char* key) {
    require(j.is_object() && j.contains(key) && j[key].is_array(), where, ": point_scaling lacks the list '", key, "'");
    std::vector<double> out;
    for (const auto& v : j[key]) {
      require(v.is_number(), where, ": point_scaling.", key, " holds a non-number");
      out.push_back(v.get<double>());
    }
    return out;
  };
  PointScaling s;
  s.mean = numbers("mean");
  s.scale = numbers("scale");
  require(s.mean.size() == s.scale.size(), where, ": point_scaling.mean and .scale differ in length");
  for (double v : s.scale) require(std::isfinite(v) && v > 0, where, ": point_scaling.scale must be positive");
  return s;
}

bool PointScaling::same_as(const PointScaling& other) const {
  if (mean.size() != other.mean.size()) return false;
  const auto close = [](double a, double b) {
    return std::abs(a - b) <= 1e-6 * std::max({1.0, std::abs(a), std::abs(b)});
  };
  for (size_t i = 0; i < mean.size(); ++i)
    if (!close(mean[i], other.mean[i]) || !close(scale[i], other.scale[i])) return false;
  return true;
}

std::string PointScaling::describe() const {
  if (is_identity()) return "identity";
  std::ostringstream out;
  out.precision(4);
  const auto list = [&](const std::vector<double>& v) {
    out << "(";
    for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
    out << ")";
  };
  out << "model = (x - ";
  list(mean);
  out << ") * ";
  list(scale);
  return out.str();
}

}  // namespace onestep
