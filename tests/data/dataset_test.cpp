#include "core/error.h"
#include "data/dataset.h"
#include "data/formats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

using onestep::DataConfig;
using onestep::Dataset;
using onestep::Error;
using onestep::Json;
using ::testing::HasSubstr;

TEST(Conversion, FloatToImagesQuantizesAsFid) {
  // clamp(x * 127.5 + 128, 0, 255) then truncation (docs/methods.md section 10), computed by hand:
  // -1 -> 0.5 -> 0; 1 -> 255.5 -> 255; 0 -> 128; -0.5 -> 64.25 -> 64; 0.3 -> 166.25 -> 166; 2 -> 255; -3 -> 0.
  torch::Tensor x = torch::tensor({-1.0f, 1.0f, 0.0f, -0.5f, 0.3f, 2.0f, -3.0f});
  torch::Tensor q = onestep::float_to_images(x);
  ASSERT_EQ(q.scalar_type(), torch::kUInt8);
  std::vector<int> expected = {0, 255, 128, 64, 166, 255, 0};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(q[i].item<int>(), expected[i]) << "i=" << i;
}

TEST(Conversion, ImagesToFloatMapsToMinusOneOne) {
  torch::Tensor u = torch::tensor({0, 255, 51}, torch::kUInt8);
  torch::Tensor f = onestep::images_to_float(u);
  EXPECT_FLOAT_EQ(f[0].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(f[1].item<float>(), 1.0f);
  EXPECT_NEAR(f[2].item<float>(), 51 / 127.5 - 1, 1e-6);
  EXPECT_THROW(onestep::images_to_float(torch::zeros({2})), Error);
  EXPECT_THROW(onestep::float_to_images(torch::zeros({2}, torch::kUInt8)), Error);
}

TEST(Transforms, PadCentersWithMinusOneBorder) {
  torch::Tensor img = torch::full({2, 1, 28, 28}, 200, torch::kUInt8);
  torch::Tensor padded = onestep::pad_images(img, 32);
  ASSERT_EQ(padded.sizes(), (std::vector<int64_t>{2, 1, 32, 32}));
  torch::Tensor f = onestep::images_to_float(padded);
  // Two pixels of -1 on every side, the original in the centre.
  EXPECT_TRUE(f.slice(2, 0, 2).eq(-1).all().item<bool>());
  EXPECT_TRUE(f.slice(2, 30, 32).eq(-1).all().item<bool>());
  EXPECT_TRUE(f.slice(3, 0, 2).eq(-1).all().item<bool>());
  EXPECT_TRUE(f.slice(3, 30, 32).eq(-1).all().item<bool>());
  EXPECT_TRUE(padded.slice(2, 2, 30).slice(3, 2, 30).eq(200).all().item<bool>());
  EXPECT_THROW(onestep::pad_images(img, 20), Error);
}

TEST(Transforms, ResizeKeepsConstantsAndShape) {
  torch::Tensor img = torch::full({1, 3, 8, 8}, 77, torch::kUInt8);
  torch::Tensor up = onestep::resize_images(img, 16);
  ASSERT_EQ(up.sizes(), (std::vector<int64_t>{1, 3, 16, 16}));
  EXPECT_TRUE(up.eq(77).all().item<bool>());
  // A 2x2 checker downsampled to 1x1 is the average (antialiased): (0 + 255 + 255 + 0) / 4 = 127.5 -> 128.
  torch::Tensor checker = torch::tensor({0, 255, 255, 0}, torch::kUInt8).reshape({1, 1, 2, 2});
  EXPECT_EQ(onestep::resize_images(checker, 1).item<int>(), 128);
}

TEST(Transforms, SubsetIsSeededSortedAndDistinct) {
  torch::Tensor a = onestep::subset_indices(100, 10, 3);
  torch::Tensor b = onestep::subset_indices(100, 10, 3);
  torch::Tensor c = onestep::subset_indices(100, 10, 4);
  EXPECT_TRUE(a.equal(b));
  EXPECT_FALSE(a.equal(c));
  EXPECT_EQ(std::get<0>(at::_unique(a)).numel(), 10);
  EXPECT_TRUE(a.equal(std::get<0>(a.sort())));
  EXPECT_THROW(onestep::subset_indices(5, 6, 0), Error);
}

TEST(DataConfig, ParsesDefaultsAndRejectsBadValues) {
  DataConfig c = DataConfig::from_config(Json::object());
  EXPECT_EQ(c.dataset, "fashion-mnist");
  Json root = {{"data", {{"dataset", "two-moons"}, {"num_points", 500}, {"seed", 3}}}};
  c = DataConfig::from_config(root);
  EXPECT_EQ(c.dataset, "two-moons");
  EXPECT_EQ(c.num_points, 500);
  EXPECT_EQ(DataConfig::from_config(Json{{"data", c.to_json()}}).to_json(), c.to_json());
  EXPECT_THROW(DataConfig::from_config(Json{{"data", {{"dataset", "imagenet"}}}}), Error);
  EXPECT_THROW(DataConfig::from_config(Json{{"data", {{"datset", "mnist"}}}}), Error);
  EXPECT_THROW(DataConfig::from_config(Json{{"data", {{"resize", "crop"}}}}), Error);
  EXPECT_THROW(DataConfig::from_config(Json{{"data", {{"subset", -1}}}}), Error);
}

TEST(LoadDataset, PathRequiredForUserFormats) {
  for (const char* name : {"mnist", "cifar10", "folder", "zip", "idx", "points"}) {
    DataConfig c;
    c.dataset = name;
    try {
      onestep::load_dataset(c);
      ADD_FAILURE() << name << " loaded without a path";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("data.path")) << name;
    }
  }
  DataConfig c;
  c.dataset = "mnist";
  c.path = "/nonexistent/onestep";
  EXPECT_THROW(onestep::load_dataset(c), Error);
}

TEST(LoadDataset, ToyPointsWithOptions) {
  DataConfig c;
  c.dataset = "checkerboard";
  c.num_points = 1000;
  c.subset = 100;
  Dataset d = onestep::load_dataset(c);
  EXPECT_EQ(d.samples.sizes(), (std::vector<int64_t>{100, 2}));
  EXPECT_FALSE(d.is_image());
  c.labels = true;
  EXPECT_THROW(onestep::load_dataset(c), Error);  // toy points have no labels
  c.labels = false;
  c.flip = true;
  EXPECT_THROW(onestep::load_dataset(c), Error);
  EXPECT_THAT(onestep::describe_dataset(d), HasSubstr("100 points"));
}

// Real Fashion-MNIST (Debian's dataset-fashion-mnist): loaded once for the suite.
class FashionMnist : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) return;
    DataConfig c;
    c.labels = true;
    train_ = new Dataset(onestep::load_dataset(c));
  }
  static void TearDownTestSuite() {
    delete train_;
    train_ = nullptr;
  }
  void SetUp() override {
    if (train_ == nullptr) GTEST_SKIP() << "Fashion-MNIST is not installed";
  }
  static Dataset* train_;
};
Dataset* FashionMnist::train_ = nullptr;

TEST_F(FashionMnist, TrainSplitShapeAndFirstLabel) {
  EXPECT_EQ(train_->samples.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(train_->samples.scalar_type(), torch::kUInt8);
  EXPECT_EQ(train_->num_classes, 10);
  EXPECT_EQ(train_->labels[0].item<int64_t>(), 9);  // the first training item is an ankle boot
  EXPECT_EQ(train_->labels[1].item<int64_t>(), 0);
  // 6000 of each class.
  EXPECT_TRUE(torch::bincount(train_->labels).eq(6000).all().item<bool>());
  const std::string text = onestep::describe_dataset(*train_);
  EXPECT_THAT(text, HasSubstr("60000 images of shape [1, 28, 28]"));
  EXPECT_THAT(text, HasSubstr("9:6000"));
}

TEST_F(FashionMnist, TestSplitPaddedAndSubset) {
  DataConfig c;
  c.split = "test";
  c.resolution = 32;
  c.subset = 50;
  Dataset d = onestep::load_dataset(c);
  EXPECT_EQ(d.samples.sizes(), (std::vector<int64_t>{50, 1, 32, 32}));
  EXPECT_FALSE(d.labels.defined());
  EXPECT_TRUE(d.samples.slice(2, 0, 2).eq(0).all().item<bool>());
}
