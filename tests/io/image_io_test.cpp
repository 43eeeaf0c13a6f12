#include "core/error.h"
#include "io/image_io.h"
#include "../data/temp_dir.h"

#include <gtest/gtest.h>

using onestep::Error;
using onestep::testing::TempDir;

TEST(ImageIo, PngRoundTripGrayAndColor) {
  TempDir dir("png");
  torch::Tensor rgb = torch::randint(0, 256, {3, 5, 7}, torch::kUInt8);
  onestep::write_png(dir / "rgb.png", rgb);
  EXPECT_TRUE(onestep::read_image(dir / "rgb.png").equal(rgb));
  torch::Tensor gray = torch::randint(0, 256, {1, 4, 3}, torch::kUInt8);
  onestep::write_png(dir / "sub/gray.png", gray);
  EXPECT_TRUE(onestep::read_image(dir / "sub/gray.png").equal(gray));
}

TEST(ImageIo, GridPlacesTilesWithPadding) {
  TempDir dir("grid");
  // 5 tiles of 2x3 with values 10, 20, ... -> 3 columns, 2 rows, padding 1: 2*2+1 = 5 rows, 3*3+2 = 11 columns.
  torch::Tensor tiles = torch::empty({5, 1, 2, 3}, torch::kUInt8);
  for (int i = 0; i < 5; ++i) tiles[i].fill_(10 * (i + 1));
  onestep::write_png_grid(dir / "grid.png", tiles, 0, 1);
  torch::Tensor grid = onestep::read_image(dir / "grid.png");
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{1, 5, 11}));
  EXPECT_EQ(grid[0][0][0].item<int>(), 10);
  EXPECT_EQ(grid[0][0][4].item<int>(), 20);   // second tile starts at x = 3 + 1
  EXPECT_EQ(grid[0][0][3].item<int>(), 0);    // padding
  EXPECT_EQ(grid[0][3][4].item<int>(), 50);   // fifth tile: row 1, column 1
  EXPECT_EQ(grid[0][3][8].item<int>(), 0);    // the empty sixth slot
  onestep::write_png_grid(dir / "one_row.png", tiles, 5, 0);
  EXPECT_EQ(onestep::read_image(dir / "one_row.png").sizes(), (std::vector<int64_t>{1, 2, 15}));
}

TEST(ImageIo, RejectsBadTensorsAndFiles) {
  TempDir dir("png_bad");
  EXPECT_THROW(onestep::write_png(dir / "a.png", torch::zeros({3, 4, 4})), Error);                  // float
  EXPECT_THROW(onestep::write_png(dir / "a.png", torch::zeros({2, 4, 4}, torch::kUInt8)), Error);   // 2 channels
  EXPECT_THROW(onestep::write_png(dir / "a.png", torch::zeros({4, 4}, torch::kUInt8)), Error);      // 2-d
  EXPECT_THROW(onestep::write_png_grid(dir / "g.png", torch::zeros({3, 4, 4}, torch::kUInt8)), Error);
  EXPECT_THROW(onestep::write_png_grid(dir / "g.png", torch::zeros({0, 1, 4, 4}, torch::kUInt8)), Error);
  EXPECT_THROW(onestep::read_image(dir / "missing.png"), Error);
  EXPECT_THROW(onestep::decode_image("not an image at all", "junk"), Error);
  EXPECT_THROW(onestep::decode_image("", "empty"), Error);
}

TEST(PointsDensityImage, LogScaledCountsWithYUp) {
  // size 4 over [-2, 2]^2: (0, 0) falls in row 2, column 2; (-1.5, 1.5) in the top-left pixel; (5, 5) is outside.
  const auto points = torch::tensor({0.0f, 0.0f, 0.0f, 0.0f, -1.5f, 1.5f, 5.0f, 5.0f}).view({4, 2});
  const auto image = onestep::points_density_image(points, 4, 2.0);
  ASSERT_EQ(image.sizes(), (std::vector<int64_t>{1, 4, 4}));
  EXPECT_EQ(image[0][2][2].item<int>(), 0);   // the densest pixel is black
  EXPECT_EQ(image[0][0][0].item<int>(), 94);  // 255 (1 - ln 2 / ln 3) = 94.1
  EXPECT_EQ(image.eq(255).sum().item<int64_t>(), 14);  // everything else is white
  EXPECT_THROW(onestep::points_density_image(torch::zeros({3, 3})), onestep::Error);
}

// A decode failure always gives a reason.
TEST(ImageIo, UndecodableImageGivesAReason) {
  TempDir dir("png_reason");
  onestep::write_png(dir / "a.png", torch::randint(0, 256, {3, 16, 16}, torch::kUInt8));
  const std::string bytes = onestep::testing::read_bytes(dir / "a.png");
  for (size_t keep : {size_t{40}, bytes.size() / 2}) {
    std::string message = "(no error)";
    try {
      onestep::decode_image(bytes.substr(0, keep), "cut.png");
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_EQ(message.find("()"), std::string::npos) << message;
    EXPECT_EQ(message.rfind("cut.png: ", 0), 0u) << message;
  }
}
