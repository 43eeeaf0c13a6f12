#pragma once
// PNG output (stb_image_write), image input (stb_image: PNG/JPEG), and sample grids.
#include <torch/types.h>

#include <filesystem>
#include <string>

namespace onestep {

// image: uint8 [C, H, W] with C = 1 or 3.
void write_png(const std::filesystem::path& path, const torch::Tensor& image);
// The PNG file write_png would write, in memory.
std::string encode_png(const torch::Tensor& image);
// images: uint8 [N, C, H, W] -> one PNG of a near-square grid with `padding` pixels between tiles.
void write_png_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t columns = 0,
                    int64_t padding = 2);
// 2-D points [N, 2] -> a size x size density image of the square [-extent, extent]^2 (log-scaled counts, dark points
// on white, y up), for looking at toy-distribution samples.
torch::Tensor points_density_image(const torch::Tensor& points, int64_t size = 256, double extent = 2.5);
// Reads PNG/JPEG into uint8 [C, H, W] (C = channels in the file: 1 or 3; RGBA drops alpha).
torch::Tensor read_image(const std::filesystem::path& path);
torch::Tensor decode_image(const std::string& bytes, const std::string& source_name);

}  // namespace onestep
