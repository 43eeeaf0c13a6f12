// The downsampled-ImageNet .npz batches (Chrabaszcz et al. 2017) as a dataset: small synthetic batches written here
// in the format's layout (uint8 rows of R, G, B planes; labels 1..1000), read back pixel for pixel, and bad files
// refused with one line naming the file.
#include "data/dataset.h"
#include "io/npy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "data/temp_dir.h"
#include "error_message.h"

namespace {

using onestep::testing::error_of;
using onestep::testing::TempDir;
using onestep::testing::write_bytes;
using ::testing::HasSubstr;

// n images of r x r whose values encode (image, channel, y, x); labels 1-based.
std::map<std::string, torch::Tensor> npz_batch(int64_t n, int64_t r, int64_t first_label) {
  torch::Tensor data = (torch::arange(n * 3 * r * r, torch::kInt64) % 251).to(torch::kUInt8).reshape({n, 3 * r * r});
  torch::Tensor labels = torch::arange(first_label, first_label + n, torch::kInt64);
  return {{"data", data}, {"labels", labels}, {"mean", torch::zeros({3 * r * r}, torch::kFloat32)}};
}

onestep::Dataset load_npz(const std::filesystem::path& path, const std::string& split = "train",
                          bool labels = true) {
  onestep::DataConfig c;
  c.dataset = "imagenet-npz";
  c.path = path.string();
  c.split = split;
  c.labels = labels;
  return onestep::load_dataset(c);
}

TEST(ImageNetNpz, ReadsBatchesInOrderAsPlanarImagesWithZeroBasedLabels) {
  TempDir dir("imagenet_npz");
  onestep::write_npz(dir / "train_data_batch_1.npz", npz_batch(2, 4, 1));
  onestep::write_npz(dir / "train_data_batch_2.npz", npz_batch(3, 4, 10));
  onestep::write_npz(dir / "train_data_batch_10.npz", npz_batch(1, 4, 1000));  // after 2, not after 1
  onestep::write_npz(dir / "val_data.npz", npz_batch(4, 4, 500));
  const onestep::Dataset d = load_npz(dir.path);
  ASSERT_EQ(d.samples.sizes(), (std::vector<int64_t>{6, 3, 4, 4}));
  EXPECT_EQ(d.num_classes, 1000);
  EXPECT_TRUE(torch::equal(d.labels, torch::tensor({0, 1, 9, 10, 11, 999}, torch::kInt64)));
  // Row i of "data" is [R plane | G plane | B plane], each row-major: pixel (c, y, x) = data[i, c r r + y r + x].
  const torch::Tensor first = npz_batch(2, 4, 1).at("data");
  EXPECT_EQ(d.samples[1][2][3][1].item<int64_t>(), first[1][2 * 16 + 3 * 4 + 1].item<int64_t>());
  EXPECT_EQ(d.samples[0][1][0][2].item<int64_t>(), first[0][16 + 2].item<int64_t>());
  const onestep::Dataset val = load_npz(dir.path, "test");
  EXPECT_EQ(val.size(), 4);
  EXPECT_EQ(val.labels[0].item<int64_t>(), 499);
  const onestep::Dataset one = load_npz(dir / "train_data_batch_2.npz");
  EXPECT_EQ(one.size(), 3);
  EXPECT_FALSE(load_npz(dir.path, "train", false).labels.defined());  // data.labels = false drops them
}

TEST(ImageNetNpz, RefusesBadFilesNamingThem) {
  TempDir dir("imagenet_npz_bad");
  auto write = [&](const std::string& name, std::map<std::string, torch::Tensor> arrays) {
    onestep::write_npz(dir / name, arrays);
    return dir / name;
  };
  auto batch = npz_batch(2, 4, 1);
  auto no_labels = batch;
  no_labels.erase("labels");
  EXPECT_THAT(error_of([&] { load_npz(write("a.npz", no_labels)); }), HasSubstr("a.npz: needs arrays 'data' and"));
  auto zero_label = batch;
  zero_label["labels"] = torch::tensor({0, 3}, torch::kInt64);
  EXPECT_THAT(error_of([&] { load_npz(write("b.npz", zero_label)); }), HasSubstr("b.npz: labels must be 1..1000"));
  auto floats = batch;
  floats["data"] = batch["data"].to(torch::kFloat32);
  EXPECT_THAT(error_of([&] { load_npz(write("c.npz", floats)); }), HasSubstr("c.npz: 'data' must be uint8"));
  auto ragged = batch;
  ragged["data"] = torch::zeros({2, 47}, torch::kUInt8);
  EXPECT_THAT(error_of([&] { load_npz(write("d.npz", ragged)); }), HasSubstr("d.npz: 'data' rows of 47 values"));
  auto short_labels = batch;
  short_labels["labels"] = torch::tensor({1}, torch::kInt64);
  EXPECT_THAT(error_of([&] { load_npz(write("e.npz", short_labels)); }), HasSubstr("e.npz: 'labels' must be"));
  TempDir empty("imagenet_npz_empty");
  EXPECT_THAT(error_of([&] { load_npz(empty.path); }), HasSubstr("holds no train_data_batch_<k>.npz"));
  EXPECT_THAT(error_of([&] { load_npz(empty.path, "test"); }), HasSubstr("lacks val_data.npz"));
  TempDir mixed("imagenet_npz_mixed");
  onestep::write_npz(mixed / "train_data_batch_1.npz", npz_batch(1, 4, 1));
  onestep::write_npz(mixed / "train_data_batch_2.npz", npz_batch(1, 8, 1));
  EXPECT_THAT(error_of([&] { load_npz(mixed.path); }), HasSubstr("train_data_batch_2.npz holds 8x8 images"));
  write_bytes(dir / "f.npz", "not a zip");
  EXPECT_THAT(error_of([&] { load_npz(dir / "f.npz"); }), HasSubstr("f.npz"));
}

}  // namespace
