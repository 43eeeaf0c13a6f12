#include "core/error.h"
#include "data/dataset.h"
#include "data/formats.h"
#include "io/image_io.h"
#include "io/npy.h"
#include "io/zip.h"
#include "temp_dir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "error_message.h"

#include <numbers>

using onestep::DataConfig;
using onestep::Dataset;
using onestep::Error;
using onestep::testing::TempDir;
using onestep::testing::write_bytes;
using ::testing::HasSubstr;

namespace {

using onestep::testing::error_of;

std::string cifar_records(int n, int first_label) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    s.push_back(static_cast<char>((first_label + i) % 10));
    for (int k = 0; k < 3072; ++k) s.push_back(static_cast<char>((k / 1024) * 50 + i));  // channel c = 50c + i
  }
  return s;
}

std::string png_bytes(const torch::Tensor& image, const TempDir& dir) {
  onestep::write_png(dir / "tmp.png", image);
  return onestep::testing::read_bytes(dir / "tmp.png");
}

}  // namespace

TEST(Cifar10, ReadsBatchesInChannelMajorOrder) {
  TempDir dir("cifar");
  for (int b = 1; b <= 5; ++b) write_bytes(dir / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(2, b));
  write_bytes(dir / "test_batch.bin", cifar_records(3, 0));
  Dataset train = onestep::load_cifar10(dir.path, "train");
  ASSERT_EQ(train.samples.sizes(), (std::vector<int64_t>{10, 3, 32, 32}));
  EXPECT_EQ(train.labels[0].item<int64_t>(), 1);
  EXPECT_EQ(train.labels[9].item<int64_t>(), 6);
  EXPECT_EQ(train.samples[1][2][31][31].item<int>(), 101);  // channel 2 of record 1
  Dataset test = onestep::load_cifar10(dir.path, "test");
  EXPECT_EQ(test.size(), 3);
  EXPECT_EQ(onestep::load_cifar10(dir / "test_batch.bin", "train").size(), 3);

  write_bytes(dir / "test_batch.bin", cifar_records(3, 0).substr(1));
  EXPECT_THAT(error_of([&] { onestep::load_cifar10(dir.path, "test"); }), HasSubstr("multiple of the 3073"));
  write_bytes(dir / "test_batch.bin", "");
  EXPECT_THAT(error_of([&] { onestep::load_cifar10(dir.path, "test"); }), HasSubstr("empty"));
  std::string bad_label = cifar_records(1, 0);
  bad_label[0] = 42;
  write_bytes(dir / "test_batch.bin", bad_label);
  EXPECT_THAT(error_of([&] { onestep::load_cifar10(dir.path, "test"); }), HasSubstr("label 42"));
  std::filesystem::remove(dir / "data_batch_3.bin");
  EXPECT_THAT(error_of([&] { onestep::load_cifar10(dir.path, "train"); }), HasSubstr("data_batch_3.bin"));
}

TEST(ImageFolder, RecursiveSortedWithLabels) {
  TempDir dir("folder");
  onestep::write_png(dir / "00000/img0.png", torch::full({3, 4, 4}, 10, torch::kUInt8));
  onestep::write_png(dir / "00001/img1.png", torch::full({3, 4, 4}, 20, torch::kUInt8));
  write_bytes(dir / "notes.txt", "ignored");
  write_bytes(dir / "dataset.json", R"({"labels": [["00001/img1.png", 4], ["00000/img0.png", 2]]})");
  Dataset d = onestep::load_image_folder(dir.path, 0);
  ASSERT_EQ(d.samples.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_EQ(d.samples[1][0][0][0].item<int>(), 20);
  EXPECT_EQ(d.labels[0].item<int64_t>(), 2);
  EXPECT_EQ(d.labels[1].item<int64_t>(), 4);
  EXPECT_EQ(d.num_classes, 5);

  onestep::write_png(dir / "00002/big.png", torch::zeros({3, 8, 8}, torch::kUInt8));
  write_bytes(dir / "dataset.json", R"({"labels": null})");
  EXPECT_THAT(error_of([&] { onestep::load_image_folder(dir.path, 0); }), HasSubstr("has shape"));
  EXPECT_EQ(onestep::load_image_folder(dir.path, 6).samples.sizes(), (std::vector<int64_t>{3, 3, 6, 6}));
  onestep::write_png(dir / "00003/gray.png", torch::zeros({1, 6, 6}, torch::kUInt8));
  EXPECT_THAT(error_of([&] { onestep::load_image_folder(dir.path, 6); }), HasSubstr("channels"));
  write_bytes(dir / "00003/gray.png", "broken png");
  EXPECT_THAT(error_of([&] { onestep::load_image_folder(dir.path, 6); }), HasSubstr("gray.png"));
  std::filesystem::remove(dir / "00003/gray.png");
  write_bytes(dir / "dataset.json", R"({"labels": [["x.png"]]})");
  EXPECT_THAT(error_of([&] { onestep::load_image_folder(dir.path, 6); }), HasSubstr("dataset.json"));

  TempDir empty("folder_empty");
  EXPECT_THAT(error_of([&] { onestep::load_image_folder(empty.path, 0); }), HasSubstr("no PNG/JPEG"));
}

TEST(ImageZip, ReadsEdmStyleZip) {
  TempDir dir("zipds");
  const std::string a = png_bytes(torch::full({3, 2, 2}, 7, torch::kUInt8), dir);
  const std::string b = png_bytes(torch::full({3, 2, 2}, 9, torch::kUInt8), dir);
  const std::string json = R"({"labels": [["00000/img00000001.png", 1], ["00000/img00000000.png", 0]]})";
  write_bytes(dir / "ds.zip", onestep::build_stored_zip({{"00000/img00000001.png", b},
                                                         {"00000/img00000000.png", a},
                                                         {"dataset.json", json}}));
  DataConfig c;
  c.dataset = "zip";
  c.path = (dir / "ds.zip").string();
  c.labels = true;
  c.resolution = 4;
  Dataset d = onestep::load_dataset(c);
  ASSERT_EQ(d.samples.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_EQ(d.samples[0][0][1][1].item<int>(), 7);  // sorted by name, padded by one pixel
  EXPECT_EQ(d.samples[0][0][0][0].item<int>(), 0);
  EXPECT_EQ(d.labels[1].item<int64_t>(), 1);

  std::string corrupt = onestep::testing::read_bytes(dir / "ds.zip");
  corrupt[corrupt.find("IDAT") + 10] ^= 0x55;
  write_bytes(dir / "bad.zip", corrupt);
  EXPECT_THAT(error_of([&] { onestep::load_image_zip(dir / "bad.zip", 0); }), HasSubstr("CRC"));
  write_bytes(dir / "empty.zip", onestep::build_stored_zip({{"dataset.json", json}}));
  EXPECT_THAT(error_of([&] { onestep::load_image_zip(dir / "empty.zip", 0); }), HasSubstr("no PNG/JPEG"));
}

TEST(Points, ToyDistributionsDeterministicAndStandardized) {
  for (const char* name : {"eight-gaussians", "two-moons", "checkerboard", "swiss-roll"}) {
    torch::Tensor a = onestep::make_toy_points(name, 4000, 1);
    ASSERT_EQ(a.sizes(), (std::vector<int64_t>{4000, 2})) << name;
    EXPECT_EQ(a.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(a.equal(onestep::make_toy_points(name, 4000, 1))) << name;
    EXPECT_FALSE(a.equal(onestep::make_toy_points(name, 4000, 2))) << name;
    EXPECT_LT(a.mean(0).abs().max().item<float>(), 1e-4) << name;
    EXPECT_NEAR(a.std(0).min().item<float>(), 1.0, 1e-3) << name;
  }
  // Eight Gaussians: every point lies close to a circle of radius sqrt(2) (std 0.1 before standardizing).
  torch::Tensor g = onestep::make_toy_points("eight-gaussians", 4000, 0);
  torch::Tensor r = g.norm(2, 1);
  EXPECT_NEAR(r.mean().item<float>(), std::sqrt(2.0f), 0.05);
  EXPECT_LT(r.std().item<float>(), 0.15);
  // Checkerboard: no points in the empty cells (e.g. the quadrant cell next to the origin's filled one).
  torch::Tensor cb = onestep::make_toy_points("checkerboard", 4000, 0) * (4 / std::sqrt(12.0f));
  torch::Tensor cell = (cb.floor() + 2).to(torch::kInt64);
  // (Empirical standardization shifts cell edges slightly: allow a few points near the edges.)
  torch::Tensor odd = (cell.select(1, 0) + cell.select(1, 1)).remainder(2).to(torch::kFloat32);
  EXPECT_LT(odd.mean().item<float>(), 0.03);
  EXPECT_THROW(onestep::make_toy_points("spiral", 10, 0), Error);
}

// The hard suite: raw coordinates (not standardized), each shape checked against its definition.
TEST(Points, HardSuiteHasItsShapesAtRawScales) {
  for (const char* name : {"thin-rings", "thin-spiral", "skewed-checkerboard", "mixed-widths"}) {
    torch::Tensor a = onestep::make_toy_points(name, 20000, 1);
    ASSERT_EQ(a.sizes(), (std::vector<int64_t>{20000, 2})) << name;
    EXPECT_TRUE(a.equal(onestep::make_toy_points(name, 20000, 1))) << name;
    EXPECT_FALSE(a.equal(onestep::make_toy_points(name, 20000, 2))) << name;
  }
  // Rings: distance to (1, -0.5) within 5 std (0.25) of radius 1.2 or 3.2, half of the points on each.
  torch::Tensor rings = onestep::make_toy_points("thin-rings", 20000, 0).to(torch::kFloat64);
  torch::Tensor r = (rings - torch::tensor({1.0, -0.5}, torch::kFloat64)).norm(2, 1);
  torch::Tensor inner = (r - 1.2).abs() < 0.25, outer = (r - 3.2).abs() < 0.25;
  EXPECT_TRUE((inner | outer).all().item<bool>());
  EXPECT_NEAR(inner.to(torch::kFloat64).mean().item<double>(), 0.5, 0.02);
  // Spiral: unsquash y, then |r - 0.4 theta| is small for the theta of the arm nearest in angle.
  torch::Tensor sp = onestep::make_toy_points("thin-spiral", 20000, 0).to(torch::kFloat64);
  torch::Tensor x = sp.select(1, 0), y = sp.select(1, 1) * 2;
  torch::Tensor radius = (x.square() + y.square()).sqrt();
  const double pi = std::numbers::pi;
  EXPECT_LT(radius.max().item<double>(), 0.4 * 4.5 * pi);
  EXPECT_GT(radius.max().item<double>(), 0.4 * 3.5 * pi);
  // Thin: every point within 0.45 (noise 0.04, doubled in y by the unsquashing) of one of the arm's turns, which
  // lie 0.4 * 2 pi = 2.5 apart.
  torch::Tensor angle = torch::atan2(y, x).remainder(2 * pi);
  torch::Tensor gap = torch::full_like(radius, 1e9);
  for (int turn = 0; turn < 3; ++turn) gap = torch::minimum(gap, (radius - 0.4 * (angle + 2 * pi * turn)).abs());
  EXPECT_LT(gap.gt(0.45).to(torch::kFloat64).mean().item<double>(), 0.001);
  // Skewed checkerboard: x in [10, 18], y in [-1, 1]; cells 2 wide, 0.5 high; only cells with i + j even hold
  // points (cell i = floor((x - 10) / 2), j = floor((y + 1) / 0.5)).
  torch::Tensor cb = onestep::make_toy_points("skewed-checkerboard", 20000, 0).to(torch::kFloat64);
  EXPECT_GE(cb.select(1, 0).min().item<double>(), 10.0);
  EXPECT_LE(cb.select(1, 0).max().item<double>(), 18.0);
  EXPECT_GE(cb.select(1, 1).min().item<double>(), -1.0);
  EXPECT_LE(cb.select(1, 1).max().item<double>(), 1.0);
  torch::Tensor ci = ((cb.select(1, 0) - 10) / 2).floor(), cj = ((cb.select(1, 1) + 1) / 0.5).floor();
  EXPECT_TRUE((ci + cj).remainder(2).eq(0).all().item<bool>());
  // Mixed widths: 20% within 0.15 (5 std) of (4, 4) and of (-4, 3), up to the wide component's few points there.
  torch::Tensor mw = onestep::make_toy_points("mixed-widths", 20000, 0).to(torch::kFloat64);
  const auto near = [&](double cx, double cy) {
    const torch::Tensor close = (mw - torch::tensor({cx, cy}, torch::kFloat64)).norm(2, 1) < 0.15;
    return close.to(torch::kFloat64).mean().item<double>();
  };
  EXPECT_NEAR(near(4, 4), 0.2, 0.015);
  EXPECT_NEAR(near(-4, 3), 0.2, 0.015);
  // The wide component: std 2, so the overall spread is far larger than the blobs'.
  EXPECT_GT(mw.std(0).min().item<double>(), 2.0);
}

TEST(Points, UserFilesNpyAndCsv) {
  TempDir dir("points");
  onestep::write_npy(dir / "p.npy", torch::tensor({1.0f, 2.0f, 3.0f, 4.0f}).reshape({2, 2}));
  EXPECT_EQ(onestep::read_points_file(dir / "p.npy")[1][0].item<float>(), 3.0f);
  write_bytes(dir / "p.csv", "x,y\n1.5,2\n-3, 4e-1\n\n");
  torch::Tensor csv = onestep::read_points_file(dir / "p.csv");
  ASSERT_EQ(csv.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_FLOAT_EQ(csv[1][1].item<float>(), 0.4f);

  onestep::write_npy(dir / "bad.npy", torch::zeros({3, 3}));
  EXPECT_THAT(error_of([&] { onestep::read_points_file(dir / "bad.npy"); }), HasSubstr("[N, 2]"));
  write_bytes(dir / "bad.csv", "1,2\n3,4,5\n");
  EXPECT_THAT(error_of([&] { onestep::read_points_file(dir / "bad.csv"); }), HasSubstr("line 2"));
  write_bytes(dir / "nan.csv", "1,2\nnan,4\n");
  EXPECT_THAT(error_of([&] { onestep::read_points_file(dir / "nan.csv"); }), HasSubstr("NaN"));
  write_bytes(dir / "empty.csv", "x,y\n");
  EXPECT_THAT(error_of([&] { onestep::read_points_file(dir / "empty.csv"); }), HasSubstr("no points"));
}

// Without dataset.json, the top-level folders are the classes in sorted order (EDM's
// dataset_tool); load_dataset checks the names a run recorded.
TEST(ImageFolder, ClassSubfoldersGiveLabelsFromSortedNames) {
  TempDir dir("folder_classes");
  onestep::write_png(dir / "dog/a.png", torch::full({1, 4, 4}, 10, torch::kUInt8));
  onestep::write_png(dir / "cat/b.png", torch::full({1, 4, 4}, 20, torch::kUInt8));
  onestep::write_png(dir / "cat/sub/c.png", torch::full({1, 4, 4}, 30, torch::kUInt8));
  onestep::write_png(dir / "emu/d.png", torch::full({1, 4, 4}, 40, torch::kUInt8));
  Dataset d = onestep::load_image_folder(dir.path, 0);
  // Sorted paths: cat/b, cat/sub/c, dog/a, emu/d.
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog", "emu"}));
  EXPECT_TRUE(d.labels.equal(torch::tensor({0, 0, 1, 2}, torch::kInt64)));
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.samples[2][0][0][0].item<int>(), 10);

  onestep::DataConfig config;
  config.dataset = "folder";
  config.path = dir.path.string();
  config.labels = true;
  EXPECT_EQ(onestep::load_dataset(config).class_names, d.class_names);
  config.class_names = {"cat", "dog", "emu"};
  EXPECT_EQ(error_of([&] { onestep::load_dataset(config); }), "(no error)");
  config.class_names = {"cat", "dog", "fox"};
  EXPECT_THAT(error_of([&] { onestep::load_dataset(config); }), HasSubstr("data.class_names [cat, dog, fox] differ"));
  EXPECT_EQ(onestep::DataConfig::from_config(onestep::Json{{"data", config.to_json()}}).class_names,
            config.class_names);

  // One folder only: no labels; dataset.json labels take precedence over folder names.
  TempDir single("folder_single");
  onestep::write_png(single / "all/a.png", torch::zeros({1, 4, 4}, torch::kUInt8));
  EXPECT_FALSE(onestep::load_image_folder(single.path, 0).labels.defined());
  write_bytes(dir / "dataset.json", R"({"labels": [["cat/b.png", 1], ["cat/sub/c.png", 1], ["dog/a.png", 0],
                                      ["emu/d.png", 0]]})");
  Dataset from_json = onestep::load_image_folder(dir.path, 0);
  EXPECT_TRUE(from_json.labels.equal(torch::tensor({1, 1, 0, 0}, torch::kInt64)));
  EXPECT_TRUE(from_json.class_names.empty());
}
