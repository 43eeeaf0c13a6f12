#pragma once
// A user's folder of images as the CLI tests write it: two class subfolders (cats/, dogs/) of 32 x 32 colour PNGs,
// reddish cats and bluish dogs with per-image noise.
#include "io/image_io.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace onestep::testing {

inline void write_pet_folder(const std::filesystem::path& dir, int64_t per_class = 8, int64_t height = 32,
                             int64_t width = 32) {
  auto generator = at::make_generator<at::CPUGeneratorImpl>(7);
  for (int64_t k = 0; k < 2; ++k) {
    const std::string cls = k == 0 ? "cats" : "dogs";
    const torch::Tensor base = k == 0 ? torch::tensor({200.0, 80.0, 40.0}) : torch::tensor({40.0, 90.0, 210.0});
    for (int64_t i = 0; i < per_class; ++i) {
      const torch::Tensor noise = torch::randn({3, height, width}, generator) * 25.0;
      const torch::Tensor image = (base.view({3, 1, 1}) + noise).clamp(0, 255).to(torch::kUInt8);
      write_png(dir / cls / (std::to_string(i) + ".png"), image);
    }
  }
}

}  // namespace onestep::testing
