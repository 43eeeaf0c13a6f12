#pragma once
// What a dataset says about the network that models it, and how that reaches the [model] section: the sample
// shape (model.img_channels x model.img_resolution^2 for images, model.in_dim for points) and the number of classes
// (model.label_dim). `onestep train` applies it where it builds the model; `onestep data` prints it.
//
// Which values are the user's: a preset (configs/*.toml) sets these keys for its own data, so that it documents
// its network and `onestep info --preset` can build it. Those values are defaults: the data replaces them (a note
// says so). A value the user gave (--set model.KEY=..., or the [model] section of their own configuration file,
// not of a preset it starts from with `base`) is explicit: one that disagrees with the data is refused with the
// key and the data's value. A resumed run's config.toml is the user's record: every key in it is explicit.
// Telling the layers apart this way (rather than dropping the keys from the presets) keeps every preset a complete,
// buildable description of its network and keeps the presets unchanged on their own data. See docs/data.md.
#include "config/config.h"
#include "data/dataset.h"

#include <set>
#include <string>
#include <vector>

namespace onestep {

struct DataShape {
  bool image = true;
  int64_t channels = 0, height = 0, width = 0;  // images, after data.resolution
  int64_t dim = 0;                              // points
  int64_t classes = 0;                          // classes the training labels use (0: unconditional)
  std::vector<std::string> class_names;
  std::string source;  // "data.dataset = folder, data.path = images" for messages

  // The shape of the data as load_dataset returned it under `config` (labels only with data.labels = true).
  static DataShape of(const Dataset& data, const DataConfig& config);
  // "3 x 32 x 32 images, 2 classes (cats, dogs)" / "2-D points, no labels".
  std::string describe() const;
  // The [model] keys the data decides, with its values: img_resolution, img_channels and label_dim for images;
  // in_dim and label_dim for points. Non-square images are refused here (the networks take H = W).
  Json model_keys() const;
};

// Where the [model] keys of a configuration came from: which ones the user set.
struct ModelKeyOrigin {
  std::set<std::string> user_keys;  // keys of [model] the user set
  bool all_user = false;            // every key present is the user's (a resumed run's config.toml)
  std::string hint;                 // what to change, for messages

  bool is_user(const std::string& key) const { return all_user || user_keys.count(key) > 0; }
  // A new run from `config` (a preset name or a file; empty: none) and --set assignments: the keys of the user's
  // own files (a file outside the presets directory, and the non-preset files it names as `base`) and of --set.
  static ModelKeyOrigin of_new_run(const std::string& config, const std::vector<std::string>& overrides);
  // A resumed run: the config.toml it recorded.
  static ModelKeyOrigin of_resumed_run();
};

// Sets the [model] keys the data decides (DataShape::model_keys) in `root`: a key the user did not set takes the
// data's value; a user's key that disagrees is refused with one line naming the key, its value, the data's value
// and what to change. model.label_dim may exceed the data's classes (a class count kept from a larger set); it may
// not be smaller, nor positive for unlabelled training. An image dataset needs an image network (model.arch =
// songunet) and points the MLP. Returns a note naming the preset values the data replaced ("" when none).
std::string apply_data_shape(Json& root, const DataShape& shape, const ModelKeyOrigin& origin);

// The data-decided keys of two [model] sections that differ, as "img_channels 1 vs 3, img_resolution 28 vs 32"
// ("" when they agree): --init, checkpoints against configurations.
std::string model_shape_difference(const Json& first, const Json& second);

// "model.img_channels = 3, model.img_resolution = 32" for the data-decided keys of a [model] section.
std::string model_shape_keys_text(const Json& model);

}  // namespace onestep
