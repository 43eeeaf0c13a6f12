#include "trainer/sample_grid.h"

#include "core/random.h"
#include "data/dataset.h"
#include "io/atomic_file.h"
#include "io/image_io.h"
#include "io/npy.h"
#include "io/tensorboard.h"

#include <cstdio>

namespace onestep {

namespace {

torch::Tensor fixed_latents(int64_t count, const std::vector<int64_t>& shape, int64_t seed) {
  auto generator = make_generator(torch::kCPU, static_cast<uint64_t>(seed) + 0x5eed);
  std::vector<int64_t> full{count};
  full.insert(full.end(), shape.begin(), shape.end());
  return random_normal(full, generator, torch::kCPU, torch::kFloat32, "sample-grid latents");
}

std::string step_file(const char* extension, int64_t step) {
  char name[64];
  std::snprintf(name, sizeof name, "step-%08lld.%s", static_cast<long long>(step), extension);
  return name;
}

}  // namespace

void write_sample_grid(Denoiser& model, const SampleGridSettings& settings, const torch::Device& device, int64_t step,
                       const std::filesystem::path& samples_dir, EventWriter* events) {
  const torch::Tensor latents = fixed_latents(settings.count, model->sample_shape(), settings.seed).to(device);
  auto generator = make_generator(device, static_cast<uint64_t>(settings.seed) + 1);
  torch::Tensor labels;
  if (model->label_dim() > 0)
    labels = torch::arange(settings.count, torch::kInt64).remainder(model->label_dim()).to(device);
  torch::Tensor x = run_sampler(model, settings.sampler, latents, generator, labels).cpu();
  if (x.dim() == 2) x = model->point_scaling().to_user(x);  // points in the data's own units
  std::filesystem::create_directories(samples_dir);
  if (x.dim() == 4) {
    const auto path = samples_dir / step_file("png", step);
    write_png_grid(path, float_to_images(x));
    if (events) events->write_png(step, "samples", read_file_bytes(path));
  } else {
    write_npy(samples_dir / step_file("npy", step), x.to(torch::kFloat32).contiguous());
    if (events && x.dim() == 2 && x.size(1) == 2)
      events->write_png(step, "samples", encode_png(points_density_image(x.to(torch::kFloat32))));
  }
}

}  // namespace onestep
