// Shape transforms applied once at load time (the data stays uint8 in memory) and the seeded subset choice.
#include "data/formats.h"

#include "core/error.h"
#include "core/random.h"

#include <ATen/CPUGeneratorImpl.h>

namespace onestep {

torch::Tensor pad_images(const torch::Tensor& images, int64_t resolution) {
  require(images.dim() == 4, "pad: expected images [N, C, H, W], got shape ", images.sizes());
  const int64_t h = images.size(2), w = images.size(3);
  require(h <= resolution && w <= resolution, "data.resize=pad cannot shrink ", h, "x", w, " images to ", resolution,
          "x", resolution, " (use data.resize=resize)");
  const int64_t top = (resolution - h) / 2, left = (resolution - w) / 2;
  torch::Tensor out = torch::zeros({images.size(0), images.size(1), resolution, resolution}, images.options());
  out.slice(2, top, top + h).slice(3, left, left + w).copy_(images);
  return out;
}

torch::Tensor resize_images(const torch::Tensor& images, int64_t resolution) {
  require(images.dim() == 4, "resize: expected images [N, C, H, W], got shape ", images.sizes());
  namespace F = torch::nn::functional;
  const bool shrinking = images.size(2) > resolution || images.size(3) > resolution;
  torch::Tensor out = torch::empty({images.size(0), images.size(1), resolution, resolution}, torch::kUInt8);
  // In chunks: the float copy of a whole dataset would be 4x its uint8 size.
  const int64_t chunk = 1024;
  for (int64_t i = 0; i < images.size(0); i += chunk) {
    torch::Tensor part = images.slice(0, i, i + chunk).to(torch::kFloat32);
    torch::Tensor r = F::interpolate(part, F::InterpolateFuncOptions()
                                               .size(std::vector<int64_t>{resolution, resolution})
                                               .mode(torch::kBilinear)
                                               .align_corners(false)
                                               .antialias(shrinking));
    out.slice(0, i, i + chunk).copy_(r.round().clamp(0, 255).to(torch::kUInt8));
  }
  return out;
}

torch::Tensor subset_indices(int64_t n, int64_t count, uint64_t seed) {
  require(count > 0 && count <= n, "data.subset=", count, " must be between 1 and the dataset size ", n);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, 0x5B5E7ULL));
  torch::Tensor perm = torch::randperm(n, gen, torch::kInt64);
  return std::get<0>(perm.slice(0, 0, count).sort());
}

}  // namespace onestep
