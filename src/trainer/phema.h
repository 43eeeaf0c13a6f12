#pragma once
// EDM2's power-function EMA and its post-hoc reconstruction (Karras et al. 2024, Sec. 3 and App. C;
// training/phema.py). An EMA profile is named by its relative standard deviation sigma_rel (the width of the
// averaging window relative to the training time); it is tracked with the power function exponent gamma
// (Eq. 126, Algorithm 2) and per-step beta = (1 - batch / t)^(gamma + 1) (Eq. 127), t the images seen after the
// step. Snapshots of two such EMAs at intervals let any other sigma_rel at any snapshot time be reconstructed
// afterwards as a least-squares combination of the snapshots (Algorithm 3). docs/methods.md ("Power-function EMA").
#include "precond/model.h"

#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace onestep {

class Ema;

// sigma_rel of the power function profile with exponent gamma (Eq. 123).
double phema_exp_to_std(double gamma);
// gamma for a relative std (Eq. 126): the largest real root of gamma^3 + 7 gamma^2 + (16 - s^-2) gamma + 12 - s^-2.
// Defined for 0 < sigma_rel < exp_to_std(0) = 0.2887.
double phema_std_to_exp(double std);
// beta for tracking the profile over a step of `t_delta` images that ends at `t_next` images (Eq. 127).
double phema_beta(double std, double t_next, double t_delta);
// Inner products of two power function profiles (Eq. 151); the arguments are [N] float64 tensors broadcast as
// a row against a column by the caller.
torch::Tensor phema_correlation(const torch::Tensor& a_ofs, const torch::Tensor& a_std, const torch::Tensor& b_ofs,
                                const torch::Tensor& b_std);
// Coefficients [in, out] that combine snapshots (taken at in_ofs images with profiles in_std) into the profiles
// out_std at out_ofs images; each column sums to 1 (Algorithm 3).
torch::Tensor phema_solve(const std::vector<double>& in_ofs, const std::vector<double>& in_std,
                          const std::vector<double>& out_ofs, const std::vector<double>& out_std);

// A power-function EMA snapshot file: a model file (save_model) of one EMA at one moment, with metadata
// "phema_std", "images_seen" and "step". Named phema-<step, 8 digits>-<std, 3 decimals>.safetensors.
struct PhemaSnapshot {
  std::filesystem::path path;
  int64_t step = 0;
  int64_t images_seen = 0;
  double std = 0;
};
// Writes every power-function EMA of `emas` (rule().power_std > 0) into `dir` as snapshots of this moment.
void write_phema_snapshots(const std::filesystem::path& dir, std::vector<Ema>& emas, int64_t step,
                           int64_t images_seen);
// The snapshots in `dir`, sorted by (images_seen, std); a file named like one whose metadata is missing or
// unreadable is an error naming it.
std::vector<PhemaSnapshot> list_phema_snapshots(const std::filesystem::path& dir);
// The model whose weights are the post-hoc profile `std` at the snapshot time `images` (<= 0: the latest), from the
// snapshots taken up to then; `coefficients` receives one line per input ("<file> <coefficient>") when given.
Denoiser reconstruct_phema(const std::vector<PhemaSnapshot>& snapshots, double std, int64_t images,
                           std::vector<std::string>* coefficients = nullptr);

}  // namespace onestep
