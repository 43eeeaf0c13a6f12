// `onestep data`: what onestep sees in a dataset, and the refusals training would give, through the executable.
#include "io/image_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "../data/temp_dir.h"
#include "own_images.h"
#include "run_onestep.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using onestep::testing::run;
using ::testing::HasSubstr;

// A failure is one line "onestep: error: ..." (a note about the OpenMP wait policy may come first).
std::string data_error_line(const std::string& output) {
  const auto at = output.find("onestep: error: ");
  if (at == std::string::npos) return "(no error) " + output;
  const std::string rest = output.substr(at);
  EXPECT_EQ(std::count(rest.begin(), rest.end(), '\n'), 1) << output;
  return rest;
}

TEST(DataCommand, FolderOfImagesIsDescribedWithAGrid) {
  onestep::testing::TempDir tmp("data_cli_folder");
  onestep::testing::write_pet_folder(tmp / "images");
  const fs::path grid = tmp / "grid.png";
  const auto r = run("data " + (tmp / "images").string() + " --grid " + grid.string() + " --grid-count 6");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("data: data.dataset = folder, data.path = " + (tmp / "images").string()));
  EXPECT_THAT(r.output, HasSubstr("format: a folder of PNG/JPEG images"));
  EXPECT_THAT(r.output, HasSubstr("count: 16 images"));
  EXPECT_THAT(r.output, HasSubstr("shape: 3 x 32 x 32 (C x H x W)"));
  EXPECT_THAT(r.output, HasSubstr("values: uint8, "));
  EXPECT_THAT(r.output, HasSubstr("labels: 2 classes: 0 cats (8) 1 dogs (8)"));
  EXPECT_THAT(r.output, HasSubstr("--set data.labels=true"));
  EXPECT_THAT(r.output, HasSubstr("model: the data decides model.img_channels = 3, model.img_resolution = 32, "
                                  "model.label_dim = 0"));
  EXPECT_THAT(r.output, HasSubstr("grid: " + grid.string() + " (the first 6 images)"));
  // 6 tiles of 32 pixels in a near-square grid (3 x 2) with 2 pixels between them.
  const auto image = onestep::read_image(grid);
  EXPECT_EQ(image.size(0), 3);
  EXPECT_GT(image.size(1), 32);
  EXPECT_GT(image.size(2), 32);
}

TEST(DataCommand, PresetWithTheUsersDataShowsTheModelTheDataGives) {
  onestep::testing::TempDir tmp("data_cli_preset");
  onestep::testing::write_pet_folder(tmp / "images");
  const std::string sets = " --set data.dataset=folder --set data.path=" + (tmp / "images").string();
  auto r = run("data fmnist-ict-cpu" + sets + " --set data.labels=true");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("model: model.img_channels = 3, model.img_resolution = 32, model.label_dim = 2"));
  EXPECT_THAT(r.output, HasSubstr("(the preset had 1)"));
  EXPECT_THAT(r.output, HasSubstr("ok: the checks of 'onestep train' pass"));
  // An explicit value that disagrees: refused as training refuses it, naming the key and the data.
  r = run("data fmnist-ict-cpu" + sets + " --set model.img_channels=1");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(data_error_line(r.output), HasSubstr("model.img_channels = 1 (set in your configuration or with --set) but "
                                              "the data (data.dataset = folder"));
}

TEST(DataCommand, PresetOnItsOwnDataIsAsConfigured) {
  const auto r = run("data points-edm --set data.num_points=500");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("count: 500 points"));
  EXPECT_THAT(r.output, HasSubstr("model: model.in_dim = 2, model.label_dim = 0 (as configured)"));
}

TEST(DataCommand, BadDataFailsHereFirst) {
  onestep::testing::TempDir tmp("data_cli_bad");
  // Mixed sizes: training would refuse them.
  onestep::write_png(tmp / "mixed" / "a.png", torch::zeros({3, 32, 32}, torch::kUInt8));
  onestep::write_png(tmp / "mixed" / "b.png", torch::zeros({3, 16, 16}, torch::kUInt8));
  auto r = run("data " + (tmp / "mixed").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(data_error_line(r.output), HasSubstr("data.resolution"));
  // Non-square: the networks take H = W.
  onestep::testing::write_pet_folder(tmp / "wide", 2, 24, 32);
  r = run("data " + (tmp / "wide").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(data_error_line(r.output), HasSubstr("24 x 32 images"));
  r = run("data " + (tmp / "wide").string() + " --set data.resolution=32 --set data.resize=resize");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("shape: 3 x 32 x 32"));
  // Neither a dataset nor a preset; a file of unknown format.
  r = run("data " + (tmp / "nothing").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(data_error_line(r.output), HasSubstr("is neither a file nor a preset"));
  onestep::testing::write_bytes(tmp / "notes.txt", "hello");
  r = run("data " + (tmp / "notes.txt").string());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(data_error_line(r.output), HasSubstr("cannot tell the format"));
  // Labels asked for where there are none.
  r = run("data " + (tmp / "wide" / "cats").string() + " --set data.labels=true --set data.resolution=32 "
          "--set data.resize=resize");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_THAT(data_error_line(r.output), HasSubstr("has no labels"));
}

}  // namespace
