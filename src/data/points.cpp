// 2-D point sets: built-in toy distributions (the usual testbeds for diffusion/consistency models) and user files.
#include "data/formats.h"

#include "core/error.h"
#include "core/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include "io/npy.h"

#include <fstream>
#include <numbers>
#include <sstream>

namespace onestep {
namespace {

torch::Tensor standardize(const torch::Tensor& x) {
  // Zero mean, unit std per coordinate: keeps sigma_data = 0.5-style preconditioning in a sensible range.
  return ((x - x.mean(0, true)) / x.std(0, true, true)).to(torch::kFloat32).contiguous();
}

}  // namespace

torch::Tensor make_toy_points(const std::string& name, int64_t n, uint64_t seed) {
  require(n > 1, "toy distribution ", name, ": needs at least 2 points, got ", n);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0x7017ULL));
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const double pi = std::numbers::pi;
  torch::Tensor u = torch::rand({n}, gen, f64);
  torch::Tensor noise = torch::randn({n, 2}, gen, f64);
  if (name == "eight-gaussians") {
    torch::Tensor k = torch::randint(0, 8, {n}, gen, f64);
    torch::Tensor angle = k * (pi / 4);
    torch::Tensor centers = torch::stack({angle.cos(), angle.sin()}, 1) * std::sqrt(2.0);
    return standardize(centers + 0.1 * noise);
  }
  if (name == "two-moons") {
    torch::Tensor which = torch::randint(0, 2, {n}, gen, f64);
    torch::Tensor t = u * pi;
    torch::Tensor upper = torch::stack({t.cos(), t.sin()}, 1);
    torch::Tensor lower = torch::stack({1 - t.cos(), 0.5 - t.sin()}, 1);
    torch::Tensor w = which.unsqueeze(1);
    return standardize(upper * (1 - w) + lower * w + 0.05 * noise);
  }
  if (name == "checkerboard") {
    // 8 filled cells of a 4 x 4 board: cell (i, j) with i + j even.
    torch::Tensor cell = torch::randint(0, 8, {n}, gen, torch::TensorOptions().dtype(torch::kInt64));
    torch::Tensor row = cell.div(2, "floor");
    torch::Tensor col = cell.remainder(2) * 2 + row.remainder(2);
    torch::Tensor offset = torch::rand({n, 2}, gen, f64);
    torch::Tensor xy = torch::stack({col.to(torch::kFloat64), row.to(torch::kFloat64)}, 1) + offset - 2.0;
    return standardize(xy);
  }
  if (name == "swiss-roll") {
    torch::Tensor t = 1.5 * pi * (1 + 2 * u);
    return standardize(torch::stack({t * t.cos(), t * t.sin()}, 1) + 0.25 * noise);
  }
  // The hard suite (docs/points-suite.md): thin or curved structure at raw, unequal scales, as users' data comes. Not
  // standardized here: training maps them to sigma_data (data.normalize), samples return in these units.
  if (name == "thin-rings") {
    // Two concentric rings of radius 1.2 and 3.2 around (1, -0.5), radial std 0.05, half of the points each.
    torch::Tensor radius = torch::where(u < 0.5, torch::full_like(u, 1.2), torch::full_like(u, 3.2));
    torch::Tensor angle = torch::rand({n}, gen, f64) * (2 * pi);
    torch::Tensor r = radius + 0.05 * noise.select(1, 0);
    torch::Tensor xy = torch::stack({1.0 + r * angle.cos(), -0.5 + r * angle.sin()}, 1);
    return xy.to(torch::kFloat32).contiguous();
  }
  if (name == "thin-spiral") {
    // One arm r = 0.4 theta, theta in [pi/2, 4 pi], squashed to half height; isotropic std 0.04 across it.
    torch::Tensor theta = pi / 2 + 3.5 * pi * u;
    torch::Tensor r = 0.4 * theta;
    torch::Tensor xy = torch::stack({r * theta.cos(), 0.5 * r * theta.sin()}, 1) + 0.04 * noise;
    return xy.to(torch::kFloat32).contiguous();
  }
  if (name == "skewed-checkerboard") {
    // The 8 filled cells (i + j even) of a 4 x 4 board of cells 2 wide and 0.5 high, far from the origin:
    // x in [10, 18], y in [-1, 1].
    torch::Tensor cell = torch::randint(0, 8, {n}, gen, torch::TensorOptions().dtype(torch::kInt64));
    torch::Tensor row = cell.div(2, "floor");
    torch::Tensor col = cell.remainder(2) * 2 + row.remainder(2);
    torch::Tensor offset = torch::rand({n, 2}, gen, f64);
    torch::Tensor cx = (col.to(torch::kFloat64) + offset.select(1, 0)) * 2.0 + 10.0;
    torch::Tensor cy = (row.to(torch::kFloat64) + offset.select(1, 1)) * 0.5 - 1.0;
    return torch::stack({cx, cy}, 1).to(torch::kFloat32).contiguous();
  }
  if (name == "mixed-widths") {
    // Widths 100x apart: 40% a wide Gaussian (std 2) at the origin, 20% each a tight blob (std 0.03) at (4, 4)
    // and at (-4, 3), 20% a needle (std 1 along 30 degrees, 0.02 across it) at (3, -4).
    torch::Tensor wide = 2.0 * noise;
    torch::Tensor blob_a = torch::tensor({4.0, 4.0}, f64) + 0.03 * noise;
    torch::Tensor blob_b = torch::tensor({-4.0, 3.0}, f64) + 0.03 * noise;
    const double c = std::cos(pi / 6), s = std::sin(pi / 6);
    torch::Tensor along = noise.select(1, 0), across = 0.02 * noise.select(1, 1);
    torch::Tensor needle = torch::stack({3.0 + c * along - s * across, -4.0 + s * along + c * across}, 1);
    torch::Tensor which = u.unsqueeze(1);
    torch::Tensor xy = torch::where(which < 0.4, wide,
                                    torch::where(which < 0.6, blob_a, torch::where(which < 0.8, blob_b, needle)));
    return xy.to(torch::kFloat32).contiguous();
  }
  fail("unknown toy distribution '", name,
       "' (eight-gaussians, two-moons, checkerboard, swiss-roll; the hard suite: thin-rings, thin-spiral, "
       "skewed-checkerboard, mixed-widths)");
}

torch::Tensor read_points_file(const std::filesystem::path& path) {
  require(std::filesystem::is_regular_file(path), "points file ", path.string(), " does not exist");
  const std::string ext = path.extension().string();
  torch::Tensor points;
  if (ext == ".npy") {
    points = read_npy(path);
    require(points.scalar_type() == torch::kFloat32 || points.scalar_type() == torch::kFloat64, "points file ",
            path.string(), ": expected float32 or float64, got ", points.scalar_type());
    require(points.dim() == 2 && points.size(1) == 2, "points file ", path.string(), ": expected shape [N, 2], got ",
            points.sizes());
    points = points.to(torch::kFloat32);
  } else {
    std::ifstream in(path);
    require(in.good(), "cannot open points file ", path.string());
    std::vector<float> values;
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      std::replace(line.begin(), line.end(), ',', ' ');
      std::istringstream fields(line);
      std::vector<std::string> tokens;
      for (std::string t; fields >> t;) tokens.push_back(t);
      double a = 0, b = 0;
      // strtod (unlike operator>>) accepts nan/inf, so they reach the finiteness check with a clear message.
      auto parse = [](const std::string& t, double& v) {
        char* end = nullptr;
        v = std::strtod(t.c_str(), &end);
        return end == t.c_str() + t.size();
      };
      const bool ok = tokens.size() == 2 && parse(tokens[0], a) && parse(tokens[1], b);
      if (!ok && line_no == 1 && values.empty()) continue;  // a header line
      require(ok, "points file ", path.string(), " line ", line_no, ": expected 2 numeric columns");
      values.push_back(static_cast<float>(a));
      values.push_back(static_cast<float>(b));
    }
    points = torch::tensor(values, torch::kFloat32).reshape({-1, 2});
  }
  require(points.size(0) > 0, "points file ", path.string(), " holds no points");
  require(torch::isfinite(points).all().item<bool>(), "points file ", path.string(), " contains NaN or Inf");
  return points.contiguous();
}

}  // namespace onestep
