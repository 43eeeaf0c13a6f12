// PNG/JPEG through stb: the one translation unit that instantiates stb_image and stb_image_write.
#include "io/image_io.h"

#include "core/error.h"

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace onestep {
namespace {

void check_uint8_images(const torch::Tensor& t, int64_t dims, const std::string& what) {
  require(t.defined(), what, ": image tensor is undefined");
  require(t.scalar_type() == torch::kUInt8, what, ": expected uint8 images, got ", t.scalar_type(),
          " (convert with float_to_images)");
  require(t.dim() == dims, what, ": expected a ", dims, "-d tensor (", dims == 3 ? "C, H, W" : "N, C, H, W",
          "), got shape ", t.sizes());
  const int64_t c = t.size(dims - 3);
  require(c == 1 || c == 3, what, ": expected 1 or 3 channels, got ", c);
  require(t.size(dims - 2) > 0 && t.size(dims - 1) > 0, what, ": empty image of shape ", t.sizes());
}

void write_hwc(const std::filesystem::path& path, const torch::Tensor& chw) {
  torch::Tensor hwc = chw.to(torch::kCPU).permute({1, 2, 0}).contiguous();
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1)), c = static_cast<int>(hwc.size(2));
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::string name = path.string();
  const int ok = stbi_write_png(name.c_str(), w, h, c, hwc.data_ptr<uint8_t>(), w * c);
  require(ok != 0, "cannot write PNG ", name);
}

}  // namespace

void write_png(const std::filesystem::path& path, const torch::Tensor& image) {
  check_uint8_images(image, 3, "write_png " + path.string());
  write_hwc(path, image);
}

std::string encode_png(const torch::Tensor& image) {
  check_uint8_images(image, 3, "encode_png");
  const torch::Tensor hwc = image.to(torch::kCPU).permute({1, 2, 0}).contiguous();
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1)), c = static_cast<int>(hwc.size(2));
  std::string out;
  auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data), static_cast<size_t>(size));
  };
  require(stbi_write_png_to_func(append, &out, w, h, c, hwc.data_ptr<uint8_t>(), w * c) != 0, "cannot encode PNG");
  return out;
}

void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t columns,
                    int64_t padding) {
  const std::string what = "write_png_grid " + path.string();
  check_uint8_images(images, 4, what);
  require(images.size(0) > 0, what, ": no images to write");
  require(padding >= 0, what, ": padding must be >= 0, got ", padding);
  require(columns >= 0, what, ": columns must be >= 0, got ", columns);
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  if (columns == 0) columns = static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(n))));
  columns = std::min(columns, n);
  const int64_t rows = (n + columns - 1) / columns;
  torch::Tensor grid = torch::zeros({c, rows * h + (rows - 1) * padding, columns * w + (columns - 1) * padding},
                                    torch::kUInt8);
  torch::Tensor cpu = images.to(torch::kCPU);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i / columns, col = i % columns;
    const int64_t y = r * (h + padding), x = col * (w + padding);
    grid.slice(1, y, y + h).slice(2, x, x + w).copy_(cpu[i]);
  }
  write_hwc(path, grid);
}

torch::Tensor decode_image(const std::string& bytes, const std::string& source_name) {
  require(!bytes.empty(), source_name, ": empty image file");
  int w = 0, h = 0, c = 0;
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int len = static_cast<int>(bytes.size());
  require(stbi_info_from_memory(data, len, &w, &h, &c) != 0, source_name,
          ": not a readable PNG/JPEG image (",
          stbi_failure_reason() && *stbi_failure_reason() ? stbi_failure_reason() : "unknown format", ")");
  // Gray(+alpha) -> 1 channel, RGB(A) -> 3: alpha is dropped.
  const int want = (c <= 2) ? 1 : 3;
  stbi_uc* pixels = stbi_load_from_memory(data, len, &w, &h, &c, want);
  const char* reason = pixels == nullptr ? stbi_failure_reason() : nullptr;
  require(pixels != nullptr, source_name, ": cannot decode the ", w, "x", h, " image (",
          reason && *reason ? reason : "corrupt or truncated data", ")");
  torch::Tensor hwc = torch::empty({h, w, want}, torch::kUInt8);
  std::memcpy(hwc.data_ptr<uint8_t>(), pixels, static_cast<size_t>(h) * w * want);
  stbi_image_free(pixels);
  return hwc.permute({2, 0, 1}).contiguous();
}

torch::Tensor read_image(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), "cannot open image ", path.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return decode_image(buffer.str(), path.string());
}

torch::Tensor points_density_image(const torch::Tensor& points, int64_t size, double extent) {
  require(points.dim() == 2 && points.size(1) == 2, "a density image needs points [N, 2], got ", points.sizes());
  require(size > 1 && extent > 0, "density image: size > 1 and extent > 0 required");
  const auto p = points.to(torch::kCPU, torch::kFloat64);
  const auto col = ((p.select(1, 0) + extent) / (2 * extent) * static_cast<double>(size)).floor().to(torch::kLong);
  const auto row = ((extent - p.select(1, 1)) / (2 * extent) * static_cast<double>(size)).floor().to(torch::kLong);
  const auto inside = (col >= 0) & (col < size) & (row >= 0) & (row < size) & torch::isfinite(p).all(1);
  const auto index = (row * size + col).masked_select(inside);
  auto counts = torch::zeros({size * size}, torch::kFloat64)
                    .index_add_(0, index, torch::ones_like(index, torch::kFloat64));
  const double peak = std::max(1.0, counts.max().item<double>());
  const auto shade = counts.log1p() / std::log1p(peak);
  return (255.0 * (1.0 - shade)).round().clamp(0, 255).to(torch::kUInt8).view({1, size, size});
}

}  // namespace onestep
