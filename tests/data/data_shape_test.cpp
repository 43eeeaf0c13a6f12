// The data decides the network's shape: model.img_channels / img_resolution / label_dim (images) and in_dim
// (points) from the dataset, preset values replaced, a user's disagreeing value refused naming key and data.
#include "config/config.h"
#include "core/error.h"
#include "data/data_shape.h"
#include "data/dataset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"
#include "temp_dir.h"

#include <fstream>

using onestep::DataConfig;
using onestep::Dataset;
using onestep::DataShape;
using onestep::Json;
using onestep::ModelKeyOrigin;
using onestep::testing::error_of;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// Two classes of 3 x 32 x 32 colour images, as a folder with cats/ and dogs/ gives them.
DataShape colour_folder(bool labels) {
  Dataset d;
  d.samples = torch::zeros({4, 3, 32, 32}, torch::kUInt8);
  if (labels) {
    d.labels = torch::tensor({0, 0, 1, 1}, torch::kInt64);
    d.num_classes = 2;
    d.class_names = {"cats", "dogs"};
  }
  DataConfig c;
  c.dataset = "folder";
  c.path = "images";
  c.labels = labels;
  return DataShape::of(d, c);
}

// The [model] of the unet-fmnist-cpu preset as far as the data decides it.
Json fmnist_model() {
  return Json{{"model", {{"arch", "songunet"}, {"img_resolution", 28}, {"img_channels", 1}, {"label_dim", 0}}}};
}

ModelKeyOrigin user_keys(std::set<std::string> keys) {
  ModelKeyOrigin o;
  o.user_keys = std::move(keys);
  o.hint = "set in your configuration or with --set";
  return o;
}

}  // namespace

TEST(DataShape, ImagesGiveChannelsResolutionAndClasses) {
  const DataShape s = colour_folder(true);
  EXPECT_EQ(s.model_keys(), (Json{{"img_channels", 3}, {"img_resolution", 32}, {"label_dim", 2}}));
  EXPECT_EQ(s.describe(), "3 x 32 x 32 images, 2 classes (cats, dogs)");
  EXPECT_EQ(colour_folder(false).model_keys()["label_dim"], 0);  // data.labels = false: unconditional
}

TEST(DataShape, PointsGiveInDim) {
  Dataset d;
  d.samples = torch::zeros({10, 2});
  DataConfig c;
  c.dataset = "two-moons";
  const DataShape s = DataShape::of(d, c);
  EXPECT_EQ(s.model_keys(), (Json{{"in_dim", 2}, {"label_dim", 0}}));
  EXPECT_EQ(s.describe(), "2-D points, no labels");
}

TEST(DataShape, PresetValuesYieldToTheDataWithANote) {
  Json root = fmnist_model();
  const std::string note = onestep::apply_data_shape(root, colour_folder(true), user_keys({}));
  EXPECT_EQ(root["model"]["img_channels"], 3);
  EXPECT_EQ(root["model"]["img_resolution"], 32);
  EXPECT_EQ(root["model"]["label_dim"], 2);
  EXPECT_THAT(note, HasSubstr("model.img_channels = 3 (the preset had 1)"));
  EXPECT_THAT(note, HasSubstr("model.img_resolution = 32 (the preset had 28)"));
  EXPECT_THAT(note, HasSubstr("model.label_dim = 2 (the preset had 0)"));
}

TEST(DataShape, MissingKeysAreFilledAndAgreeingKeysGiveNoNote) {
  Json root = Json{{"model", {{"arch", "songunet"}}}};
  EXPECT_EQ(onestep::apply_data_shape(root, colour_folder(false), user_keys({})), "");
  EXPECT_EQ(root["model"]["img_channels"], 3);
  EXPECT_EQ(root["model"]["img_resolution"], 32);
  // Explicit and equal: nothing to say.
  EXPECT_EQ(onestep::apply_data_shape(root, colour_folder(false), user_keys({"img_channels", "img_resolution"})), "");
}

TEST(DataShape, UserValueThatDisagreesIsRefusedNamingKeyAndData) {
  Json root = fmnist_model();
  std::string e = error_of([&] { onestep::apply_data_shape(root, colour_folder(true), user_keys({"img_channels"})); });
  EXPECT_THAT(e, HasSubstr("model.img_channels = 1 (set in your configuration or with --set)"));
  EXPECT_THAT(e, HasSubstr("data.dataset = folder, data.path = images"));
  EXPECT_THAT(e, HasSubstr("needs model.img_channels = 3"));
  EXPECT_THAT(e, HasSubstr("drop model.img_channels"));
  root = fmnist_model();
  e = error_of([&] { onestep::apply_data_shape(root, colour_folder(true), user_keys({"img_resolution"})); });
  EXPECT_THAT(e, HasSubstr("model.img_resolution = 28"));
  EXPECT_THAT(e, HasSubstr("set data.resolution = 28"));
}

TEST(DataShape, LabelDimMayExceedTheClassesButNotFallShort) {
  Json root = fmnist_model();
  root["model"]["label_dim"] = 10;  // a class count kept from a larger set: the labels 0, 1 fit
  EXPECT_THAT(onestep::apply_data_shape(root, colour_folder(true), user_keys({"label_dim"})),
              Not(HasSubstr("label_dim")));
  EXPECT_EQ(root["model"]["label_dim"], 10);
  root = fmnist_model();
  root["model"]["label_dim"] = 1;
  std::string e = error_of([&] { onestep::apply_data_shape(root, colour_folder(true), user_keys({"label_dim"})); });
  EXPECT_THAT(e, HasSubstr("model.label_dim = 1"));
  EXPECT_THAT(e, HasSubstr("2 classes (cats, dogs)"));
  root = fmnist_model();
  root["model"]["label_dim"] = 2;
  e = error_of([&] { onestep::apply_data_shape(root, colour_folder(false), user_keys({"label_dim"})); });
  EXPECT_THAT(e, HasSubstr("model.label_dim = 2"));
  EXPECT_THAT(e, HasSubstr("data.labels = true"));
}

TEST(DataShape, ResumedRunsTreatEveryRecordedKeyAsTheUsers) {
  Json root = fmnist_model();
  const std::string e =
      error_of([&] { onestep::apply_data_shape(root, colour_folder(false), ModelKeyOrigin::of_resumed_run()); });
  EXPECT_THAT(e, HasSubstr("model.img_channels = 1"));
  EXPECT_THAT(e, HasSubstr("config.toml"));
}

TEST(DataShape, ArchitectureMustFitTheKindOfData) {
  Json root = Json{{"model", {{"arch", "mlp"}, {"in_dim", 2}}}};
  std::string e = error_of([&] { onestep::apply_data_shape(root, colour_folder(false), user_keys({})); });
  EXPECT_THAT(e, HasSubstr("model.arch = \"mlp\""));
  EXPECT_THAT(e, HasSubstr("fmnist-ict-cpu"));
  Dataset d;
  d.samples = torch::zeros({10, 2});
  root = fmnist_model();
  e = error_of([&] { onestep::apply_data_shape(root, DataShape::of(d, DataConfig{}), user_keys({})); });
  EXPECT_THAT(e, HasSubstr("model.arch = \"songunet\""));
  EXPECT_THAT(e, HasSubstr("points-edm"));
}

TEST(DataShape, NonSquareImagesAreRefusedNamingDataResolution) {
  Dataset d;
  d.samples = torch::zeros({2, 3, 24, 32}, torch::kUInt8);
  const std::string e = error_of([&] { (void)DataShape::of(d, DataConfig{}).model_keys(); });
  EXPECT_THAT(e, HasSubstr("24 x 32"));
  EXPECT_THAT(e, HasSubstr("data.resolution = 32 with data.resize = \"resize\""));
}

TEST(DataShape, UserKeysComeFromOwnFilesAndSetNotFromPresets) {
  onestep::testing::TempDir tmp("data_shape_origin");
  std::ofstream(tmp / "mine.toml") << "base = \"fmnist-ict-cpu\"\n[model]\nimg_channels = 3\n";
  auto origin = ModelKeyOrigin::of_new_run((tmp / "mine.toml").string(), {"model.label_dim=2", "train.steps=3"});
  EXPECT_EQ(origin.user_keys, (std::set<std::string>{"img_channels", "label_dim"}));
  // A preset by name, or by its path: its [model] keys are defaults.
  EXPECT_TRUE(ModelKeyOrigin::of_new_run("unet-fmnist-cpu", {}).user_keys.empty());
  EXPECT_TRUE(
      ModelKeyOrigin::of_new_run((onestep::presets_dir() / "unet-fmnist-cpu.toml").string(), {}).user_keys.empty());
  // A user's file that starts from another user's file: both are the user's.
  std::ofstream(tmp / "child.toml") << "base = \"" << (tmp / "mine.toml").string() << "\"\n[model]\ndropout = 0.0\n";
  EXPECT_EQ(ModelKeyOrigin::of_new_run((tmp / "child.toml").string(), {}).user_keys,
            (std::set<std::string>{"dropout", "img_channels"}));
}

TEST(DataShape, ImagePresetsAreUnchangedOnTheirOwnData) {
  // Each preset's data, as its shape: Fashion-MNIST 28 x 28 (CPU presets) or padded to 32 (GPU presets), CIFAR-10.
  auto shape_of = [](int64_t channels, int64_t resolution) {
    Dataset d;
    d.samples = torch::zeros({1, channels, resolution, resolution}, torch::kUInt8);
    return DataShape::of(d, DataConfig{});
  };
  for (const std::string preset : {"fmnist-ect-cpu", "fmnist-edm-cpu", "fmnist-ict-cpu"}) {
    Json root = onestep::load_config_file(onestep::resolve_preset(preset));
    const Json before = root["model"];
    EXPECT_EQ(onestep::apply_data_shape(root, shape_of(1, 28), user_keys({})), "") << preset;
    EXPECT_EQ(root["model"], before) << preset;
  }
  for (const std::string preset : {"fmnist-ect-gpu", "fmnist-edm-gpu", "fmnist-ict-gpu"}) {
    Json root = onestep::load_config_file(onestep::resolve_preset(preset));
    EXPECT_EQ(root["data"]["resolution"], 32) << preset;
    EXPECT_EQ(onestep::apply_data_shape(root, shape_of(1, 32), user_keys({})), "") << preset;
  }
  for (const std::string preset : {"cifar10-ct", "cifar10-ect", "cifar10-ect-400k", "cifar10-edm", "cifar10-ict"}) {
    Json root = onestep::load_config_file(onestep::resolve_preset(preset));
    EXPECT_EQ(onestep::apply_data_shape(root, shape_of(3, 32), user_keys({})), "") << preset;
  }
}

TEST(DataShape, PointPresetsAreUnchangedOnTheirOwnData) {
  for (const std::string preset : {"points-edm", "points-ect", "points-ict"}) {
    Json root = onestep::load_config_file(onestep::resolve_preset(preset));
    DataConfig c = DataConfig::from_config(root);
    c.num_points = 100;
    const Json before = root["model"];
    EXPECT_EQ(onestep::apply_data_shape(root, DataShape::of(onestep::load_dataset(c), c), user_keys({})), "")
        << preset;
    EXPECT_EQ(root["model"], before) << preset;
  }
}

TEST(DataShape, ShapeDifferenceNamesTheKeys) {
  const Json a{{"img_channels", 1}, {"img_resolution", 28}, {"label_dim", 0}, {"dropout", 0.1}};
  const Json b{{"img_channels", 3}, {"img_resolution", 28}, {"label_dim", 2}, {"dropout", 0.0}};
  EXPECT_EQ(onestep::model_shape_difference(a, b), "img_channels 1 vs 3, label_dim 0 vs 2");
  EXPECT_EQ(onestep::model_shape_difference(a, a), "");
  EXPECT_EQ(onestep::model_shape_keys_text(b), "model.img_channels = 3, model.img_resolution = 28, model.label_dim = 2");
}
