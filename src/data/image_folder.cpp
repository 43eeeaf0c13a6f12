// A directory tree of PNG/JPEG images, as EDM's dataset_tool writes (optionally with dataset.json labels).
#include "data/formats.h"

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/image_io.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace onestep {
namespace {

bool is_image_name(const std::string& name) {
  std::string ext = std::filesystem::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

}  // namespace

std::map<std::string, int64_t> parse_dataset_json(const std::string& text, const std::string& source_name) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    fail(source_name, ": invalid JSON (", e.what(), ")");
  }
  std::map<std::string, int64_t> labels;
  require(j.is_object(), source_name, ": expected an object with \"labels\"");
  if (!j.contains("labels") || j["labels"].is_null()) return labels;
  require(j["labels"].is_array(), source_name, ": \"labels\" must be a list of [file name, label]");
  for (const auto& item : j["labels"]) {
    require(item.is_array() && item.size() == 2 && item[0].is_string() && item[1].is_number_integer(), source_name,
            ": each label must be [\"file name\", integer], got ", item.dump());
    const int64_t label = item[1].get<int64_t>();
    require(label >= 0, source_name, ": negative label for ", item[0].get<std::string>());
    labels[item[0].get<std::string>()] = label;
  }
  return labels;
}

Dataset stack_images(const std::vector<std::pair<std::string, torch::Tensor>>& images,
                     const std::map<std::string, int64_t>& labels, int64_t resolution, const std::string& source) {
  require(!images.empty(), source, ": no PNG/JPEG images found");
  std::vector<torch::Tensor> tensors;
  const auto& [first_name, first] = images.front();
  for (const auto& [name, image] : images) {
    require(image.size(0) == first.size(0), source, ": ", name, " has ", image.size(0), " channels but ", first_name,
            " has ", first.size(0), " (mixed grayscale and color)");
    if (resolution > 0) {
      tensors.push_back(image.size(1) == resolution && image.size(2) == resolution
                            ? image
                            : resize_images(image.unsqueeze(0), resolution).squeeze(0));
    } else {
      require(image.sizes() == first.sizes(), source, ": ", name, " has shape ", image.sizes(), " but ", first_name,
              " has ", first.sizes(), " (set data.resolution with data.resize=resize)");
      tensors.push_back(image);
    }
  }
  Dataset d;
  d.samples = torch::stack(tensors);
  if (!labels.empty()) {
    std::vector<int64_t> y;
    for (const auto& [name, image] : images) {
      auto it = labels.find(name);
      require(it != labels.end(), source, ": dataset.json has no label for ", name);
      y.push_back(it->second);
    }
    d.labels = torch::tensor(y, torch::kInt64);
    d.num_classes = d.labels.max().item<int64_t>() + 1;
  }
  return d;
}

Dataset load_image_folder(const std::filesystem::path& dir, int64_t resolution) {
  require(std::filesystem::is_directory(dir), "image folder ", dir.string(), " is not a directory");
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string rel = std::filesystem::relative(entry.path(), dir).generic_string();
    if (is_image_name(rel)) names.push_back(rel);
  }
  std::sort(names.begin(), names.end());
  std::vector<std::pair<std::string, torch::Tensor>> images;
  for (const auto& name : names) images.emplace_back(name, read_image(dir / name));
  std::map<std::string, int64_t> labels;
  if (std::filesystem::is_regular_file(dir / "dataset.json")) {
    labels = parse_dataset_json(read_file_bytes(dir / "dataset.json"), (dir / "dataset.json").string());
  }
  // No labels in dataset.json: as EDM's dataset_tool (open_image_folder), the top-level folder names are the
  // classes, numbered in sorted order ("" for images at the top); a single name means no labels.
  std::vector<std::string> class_names;
  if (labels.empty()) {
    auto top_level = [](const std::string& name) {
      const auto slash = name.find('/');
      return slash == std::string::npos ? std::string() : name.substr(0, slash);
    };
    std::set<std::string> tops;
    for (const auto& name : names) tops.insert(top_level(name));
    if (tops.size() > 1) {
      class_names.assign(tops.begin(), tops.end());
      for (const auto& name : names)
        labels[name] = std::lower_bound(class_names.begin(), class_names.end(), top_level(name)) - class_names.begin();
    }
  }
  Dataset d = stack_images(images, labels, resolution, "image folder " + dir.string());
  d.class_names = std::move(class_names);
  d.name = "folder";
  return d;
}

}  // namespace onestep
