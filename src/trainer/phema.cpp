#include "trainer/phema.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "trainer/ema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <regex>
#include <tuple>

namespace onestep {

double phema_exp_to_std(double gamma) {
  return std::sqrt((gamma + 1) / ((gamma + 2) * (gamma + 2)) / (gamma + 3));
}

double phema_std_to_exp(double std) {
  const double limit = phema_exp_to_std(0.0);
  require(std > 0 && std < limit, "power-function EMA: relative std must lie in (0, ", limit, "), got ", std);
  // The largest real root of p(g) = g^3 + 7 g^2 + (16 - t) g + 12 - t, t = std^-2 (EDM2 Algorithm 2). p is convex
  // right of -7/3, so Newton's method from above the Cauchy bound descends monotonically onto it.
  const double t = 1 / (std * std);
  double g = 1 + std::max({7.0, std::abs(16 - t), std::abs(12 - t)});
  for (int i = 0; i < 200; ++i) {
    const double p = ((g + 7) * g + 16 - t) * g + 12 - t;
    const double dp = (3 * g + 14) * g + 16 - t;
    const double next = g - p / dp;
    if (!(next < g)) break;  // converged: rounding stops the descent
    g = next;
  }
  return g;
}

double phema_beta(double std, double t_next, double t_delta) {
  return std::pow(1 - t_delta / t_next, phema_std_to_exp(std) + 1);
}

torch::Tensor phema_correlation(const torch::Tensor& a_ofs, const torch::Tensor& a_std, const torch::Tensor& b_ofs,
                                const torch::Tensor& b_std) {
  auto to_exp = [](const torch::Tensor& std) {
    torch::Tensor flat = std.contiguous().to(torch::kFloat64).flatten();
    torch::Tensor out = torch::empty_like(flat);
    for (int64_t i = 0; i < flat.numel(); ++i) out[i] = phema_std_to_exp(flat[i].item<double>());
    return out.reshape(std.sizes());
  };
  const torch::Tensor a_exp = to_exp(a_std), b_exp = to_exp(b_std);
  const torch::Tensor ratio = a_ofs / b_ofs;
  const torch::Tensor exponent = torch::where(a_ofs < b_ofs, b_exp, -a_exp);
  const torch::Tensor t_max = torch::maximum(a_ofs, b_ofs);
  return (a_exp + 1) * (b_exp + 1) * ratio.pow(exponent) / ((a_exp + b_exp + 1) * t_max);
}

torch::Tensor phema_solve(const std::vector<double>& in_ofs, const std::vector<double>& in_std,
                          const std::vector<double>& out_ofs, const std::vector<double>& out_std) {
  require(in_ofs.size() == in_std.size() && out_ofs.size() == out_std.size() && !in_ofs.empty(),
          "power-function EMA: one time and one std per snapshot");
  auto column = [](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64).reshape({-1, 1}); };
  auto row = [](const std::vector<double>& v) { return torch::tensor(v, torch::kFloat64).reshape({1, -1}); };
  const torch::Tensor a = phema_correlation(column(in_ofs), column(in_std), row(in_ofs), row(in_std));
  const torch::Tensor b = phema_correlation(column(in_ofs), column(in_std), row(out_ofs), row(out_std));
  torch::Tensor x = torch::linalg_solve(a, b);
  return x / x.sum(0, /*keepdim=*/true);
}

namespace {

std::string snapshot_name(int64_t step, double std) {
  char name[96];
  std::snprintf(name, sizeof name, "phema-%08lld-%.3f.safetensors", static_cast<long long>(step), std);
  return name;
}

}  // namespace

void write_phema_snapshots(const std::filesystem::path& dir, std::vector<Ema>& emas, int64_t step,
                           int64_t images_seen) {
  for (Ema& ema : emas) {
    if (ema.rule().power_std <= 0) continue;
    std::filesystem::create_directories(dir);
    char std_text[32];
    std::snprintf(std_text, sizeof std_text, "%.17g", ema.rule().power_std);
    save_model(dir / snapshot_name(step, ema.rule().power_std), ema.model(),
               {{"phema_std", std_text}, {"images_seen", std::to_string(images_seen)}, {"step", std::to_string(step)}});
  }
}

std::vector<PhemaSnapshot> list_phema_snapshots(const std::filesystem::path& dir) {
  require(std::filesystem::is_directory(dir), "phema: '", dir.string(), "' is not a directory of snapshots");
  static const std::regex pattern(R"(phema-(\d+)-(\d+\.\d+)\.safetensors)");
  std::vector<PhemaSnapshot> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file() || !std::regex_match(entry.path().filename().string(), pattern)) continue;
    const auto meta = read_safetensors_metadata(entry.path());
    PhemaSnapshot s;
    s.path = entry.path();
    try {
      s.std = std::stod(meta.at("phema_std"));
      s.images_seen = std::stoll(meta.at("images_seen"));
      s.step = std::stoll(meta.at("step"));
    } catch (const std::exception&) {
      fail("phema: snapshot '", entry.path().string(), "' lacks readable phema_std / images_seen / step metadata");
    }
    out.push_back(s);
  }
  require(!out.empty(), "phema: no snapshots (phema-<step>-<std>.safetensors) in '", dir.string(), "'");
  std::sort(out.begin(), out.end(), [](const PhemaSnapshot& a, const PhemaSnapshot& b) {
    return std::tie(a.images_seen, a.std) < std::tie(b.images_seen, b.std);
  });
  return out;
}

Denoiser reconstruct_phema(const std::vector<PhemaSnapshot>& snapshots, double std, int64_t images,
                           std::vector<std::string>* coefficients) {
  require(!snapshots.empty(), "phema: no snapshots given");
  phema_std_to_exp(std);  // validates
  int64_t at = images;
  if (at <= 0)
    for (const auto& s : snapshots) at = std::max(at, s.images_seen);
  require(std::any_of(snapshots.begin(), snapshots.end(), [&](const auto& s) { return s.images_seen == at; }),
          "phema: no snapshot was taken at ", at, " images (reconstruction times must be snapshot times)");
  std::vector<PhemaSnapshot> inputs;  // as EDM2's reconstruct_phema.py: the snapshots in (0, at]
  for (const auto& s : snapshots)
    if (s.images_seen > 0 && s.images_seen <= at) inputs.push_back(s);
  std::vector<double> in_ofs, in_std;
  for (const auto& s : inputs) {
    in_ofs.push_back(static_cast<double>(s.images_seen));
    in_std.push_back(s.std);
  }
  const torch::Tensor coef = phema_solve(in_ofs, in_std, {static_cast<double>(at)}, {std});
  // The sum is accumulated in float64 (EDM2 sums in float32): the coefficients can be large with alternating signs.
  Denoiser out{nullptr};
  std::vector<torch::Tensor> sums;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Denoiser in = load_model(inputs[i].path);
    const double c = coef[static_cast<int64_t>(i)][0].item<double>();
    if (coefficients) coefficients->push_back(inputs[i].path.filename().string() + " " + std::to_string(c));
    if (!out) {
      out = clone_model(in);
      for (auto& p : out->parameters()) sums.push_back(torch::zeros_like(p, torch::kFloat64));
    }
    auto source = in->named_parameters();
    size_t k = 0;
    for (auto& item : out->named_parameters()) {
      const torch::Tensor* s = source.find(item.key());
      require(s != nullptr && s->sizes() == item.value().sizes(), "phema: snapshot '", inputs[i].path.string(),
              "' does not hold the same network as the others (tensor '", item.key(), "')");
      sums[k++].add_(s->to(torch::kFloat64), c);
    }
    auto buffers = in->named_buffers();  // buffers are not averaged: the latest snapshot's
    for (auto& item : out->named_buffers()) item.value().copy_(buffers[item.key()]);
  }
  size_t k = 0;
  for (auto& p : out->parameters()) p.copy_(sums[k++]);
  return out;
}

}  // namespace onestep
