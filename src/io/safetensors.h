#pragma once
// safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then the raw bytes. F32, F16, BF16, F64, I64,
// I32, U8 and BOOL. The reader is a security boundary: every header field is validated before a byte is read.
// Model files and training checkpoints are written in it.
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

struct SafetensorsContent {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // in file order, CPU, contiguous
  std::map<std::string, std::string> metadata;
  const torch::Tensor* find(const std::string& name) const;
};

// Written atomically (temp file + rename). Tensors are moved to CPU and made contiguous.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsContent load_safetensors(const std::filesystem::path& path);
SafetensorsContent parse_safetensors(const std::string& bytes, const std::string& source_name);
// Only the "__metadata__" strings, from the header alone (a model's recorded run settings without reading its
// weights); the same checks of the header length and JSON as load_safetensors.
std::map<std::string, std::string> read_safetensors_metadata(const std::filesystem::path& path);

}  // namespace onestep
