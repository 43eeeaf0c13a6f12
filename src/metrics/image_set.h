#pragma once
// Image sets produced by other tools, for `onestep eval --images`: a directory of PNG/JPEG files (EDM's
// generate.py, dataset_tool) or an .npz (openai/consistency_models writes "arr_0" uint8 [N, H, W, C]).
#include <torch/types.h>

#include <filesystem>

namespace onestep {

// Returns uint8 [N, C, H, W] with C = 1 or 3. `limit` > 0 keeps the first `limit` images (in file-name order).
torch::Tensor load_image_set(const std::filesystem::path& path, int64_t limit = 0);
// An array as numpy tools lay images out: [N, H, W] , [N, H, W, C] or [N, C, H, W] with C in {1, 3}; uint8, or float
// in [0, 255]. Ambiguous layouts resolve to NHWC, numpy's convention.
torch::Tensor images_from_array(const torch::Tensor& array, const std::string& source);

}  // namespace onestep
