#include "metrics/image_set.h"

#include "core/error.h"
#include "io/npy.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace {

TEST(ImageSet, ArrayLayoutsBecomeNchwUint8) {
  const auto nhwc = torch::arange(2 * 4 * 5 * 3).reshape({2, 4, 5, 3}).to(torch::kUInt8);
  const auto a = onestep::images_from_array(nhwc, "t");
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(a[1][2][3][4].item<int>(), nhwc[1][3][4][2].item<int>());
  const auto nchw = torch::zeros({2, 1, 6, 6}, torch::kUInt8);
  EXPECT_EQ(onestep::images_from_array(nchw, "t").sizes(), (std::vector<int64_t>{2, 1, 6, 6}));
  const auto gray = torch::full({3, 7, 7}, 254.6, torch::kFloat32);  // [N, H, W] float in [0, 255]
  const auto g = onestep::images_from_array(gray, "t");
  EXPECT_EQ(g.sizes(), (std::vector<int64_t>{3, 1, 7, 7}));
  EXPECT_EQ(g.max().item<int>(), 255);
  EXPECT_THROW(onestep::images_from_array(torch::zeros({2, 5, 6, 7}), "t"), onestep::Error);
}

TEST(ImageSet, ReadsNpzAndRejectsMissingPaths) {
  const auto dir = std::filesystem::temp_directory_path() / ("onestep_imageset_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  onestep::write_npz(dir / "s.npz", {{"arr_0", torch::zeros({5, 8, 8, 3}, torch::kUInt8)}});
  EXPECT_EQ(onestep::load_image_set(dir / "s.npz", 4).sizes(), (std::vector<int64_t>{4, 3, 8, 8}));
  EXPECT_THROW(onestep::load_image_set(dir / "missing.npz"), onestep::Error);
  EXPECT_THROW(onestep::load_image_set(dir), onestep::Error);  // a directory without images
  std::filesystem::remove_all(dir);
}

}  // namespace
