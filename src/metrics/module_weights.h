#pragma once
// Copying a safetensors file's tensors into a module's parameters and buffers by name.
#include "io/safetensors.h"

#include <torch/nn/module.h>

#include <filesystem>
#include <functional>
#include <string>

namespace onestep {

// Every parameter and buffer (but num_batches_tracked) must be in `content` with its exact shape; a tensor of the
// file that the module lacks is an error unless `ignored(name)` says so. Errors name `source` and the tensor.
void copy_named_tensors(torch::nn::Module& module, const SafetensorsContent& content, const std::string& source,
                        const std::function<bool(const std::string&)>& ignored = {});

}  // namespace onestep
