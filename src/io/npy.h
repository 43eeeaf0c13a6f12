#pragma once
// NumPy .npy (format 1.0/2.0, little-endian, C order) and .npz (zip of .npy; stored or deflated on read,
// stored on write) for float32, float64, uint8, int64, int32. Readable by numpy.
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>

namespace onestep {

void write_npy(const std::filesystem::path& path, const torch::Tensor& array);
torch::Tensor read_npy(const std::filesystem::path& path);
std::string encode_npy(const torch::Tensor& array);
torch::Tensor decode_npy(const std::string& bytes, const std::string& source_name);

void write_npz(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& arrays);
std::map<std::string, torch::Tensor> read_npz(const std::filesystem::path& path);

}  // namespace onestep
