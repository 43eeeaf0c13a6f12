#include "metrics/image_set.h"

#include "core/error.h"
#include "io/image_io.h"
#include "io/npy.h"

#include <algorithm>
#include <vector>

namespace onestep {

torch::Tensor images_from_array(const torch::Tensor& array, const std::string& source) {
  auto a = array;
  if (a.dim() == 3) a = a.unsqueeze(-1);
  require(a.dim() == 4, source, ": expected images [N, H, W, C] or [N, C, H, W], got ", array.sizes());
  const bool nhwc = a.size(3) == 1 || a.size(3) == 3;
  const bool nchw = a.size(1) == 1 || a.size(1) == 3;
  require(nhwc || nchw, source, ": cannot find a channel axis of size 1 or 3 in ", array.sizes());
  if (nhwc) a = a.permute({0, 3, 1, 2});
  if (a.scalar_type() != torch::kUInt8) {
    require(a.is_floating_point(), source, ": images must be uint8 or float, got ", a.scalar_type());
    require(torch::isfinite(a).all().item<bool>(), source, ": images contain NaN or Inf");
    a = a.round().clamp(0, 255).to(torch::kUInt8);
  }
  return a.contiguous();
}

torch::Tensor load_image_set(const std::filesystem::path& path, int64_t limit) {
  namespace fs = std::filesystem;
  require(fs::exists(path), "images not found: ", path.string());
  torch::Tensor images;
  if (fs::is_directory(path)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(path)) {
      if (!entry.is_regular_file()) continue;
      auto ext = entry.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
      if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(entry.path());
    }
    require(!files.empty(), "no PNG/JPEG images in directory ", path.string());
    std::sort(files.begin(), files.end());
    if (limit > 0 && static_cast<int64_t>(files.size()) > limit) files.resize(static_cast<size_t>(limit));
    std::vector<torch::Tensor> list;
    list.reserve(files.size());
    for (const auto& f : files) {
      list.push_back(read_image(f));
      require(list.back().sizes() == list.front().sizes(), "image ", f.string(), " has shape ", list.back().sizes(),
              ", the first image ", files.front().string(), " has ", list.front().sizes());
    }
    images = torch::stack(list);
  } else {
    require(path.extension() == ".npz" || path.extension() == ".npy", "images must be a directory or an .npz/.npy, got ",
            path.string());
    torch::Tensor array;
    if (path.extension() == ".npy") {
      array = read_npy(path);
    } else {
      const auto arrays = read_npz(path);
      if (arrays.count("arr_0")) array = arrays.at("arr_0");
      else if (arrays.count("images")) array = arrays.at("images");
      else if (arrays.size() == 1) array = arrays.begin()->second;
      else fail(path.string(), ": expected an array 'arr_0' or 'images'");
    }
    images = images_from_array(array, path.string());
    if (limit > 0 && images.size(0) > limit) images = images.slice(0, 0, limit).contiguous();
  }
  require(images.size(0) >= 2, path.string(), ": need at least 2 images, got ", images.size(0));
  return images;
}

}  // namespace onestep
