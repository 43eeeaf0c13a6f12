// A zip of images with dataset.json, the output format of EDM's dataset_tool.py.
#include "data/formats.h"

#include "core/error.h"
#include "io/image_io.h"
#include "io/zip.h"

namespace onestep {

Dataset load_image_zip(const std::filesystem::path& zip_path, int64_t resolution) {
  ZipReader zip(zip_path);
  std::vector<const ZipEntry*> entries;
  for (const auto& e : zip.entries()) {
    std::string ext = std::filesystem::path(e.name).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") entries.push_back(&e);
  }
  std::sort(entries.begin(), entries.end(), [](const ZipEntry* a, const ZipEntry* b) { return a->name < b->name; });
  std::vector<std::pair<std::string, torch::Tensor>> images;
  for (const ZipEntry* e : entries) {
    images.emplace_back(e->name, decode_image(zip.read(*e), zip_path.string() + ":" + e->name));
  }
  std::map<std::string, int64_t> labels;
  if (const ZipEntry* json = zip.find("dataset.json")) {
    labels = parse_dataset_json(zip.read(*json), zip_path.string() + ":dataset.json");
  }
  Dataset d = stack_images(images, labels, resolution, "zip " + zip_path.string());
  d.name = "zip";
  return d;
}

}  // namespace onestep
