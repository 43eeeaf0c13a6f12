#pragma once
// Readers for each on-disk dataset format (one .cpp per format) and the transforms load_dataset applies.
// Internal to src/data: callers use load_dataset (dataset.h).
#include "data/dataset.h"

#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace onestep {

// IDX (MNIST / Fashion-MNIST), gzip or raw. Images: magic 0x00000803 -> uint8 [N, 1, H, W]; labels: 0x00000801.
torch::Tensor read_idx_images(const std::filesystem::path& path);
torch::Tensor read_idx_labels(const std::filesystem::path& path);
// A directory with {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (split "train" or "test").
Dataset load_idx_directory(const std::filesystem::path& dir, const std::string& split, const std::string& name);
// A single images file; labels are read from the sibling "labels-idx1" file when it exists.
Dataset load_idx_file(const std::filesystem::path& images_file);

// CIFAR-10 binary batches: a directory holding data_batch_1..5.bin (train) / test_batch.bin (test), or one .bin file.
Dataset load_cifar10(const std::filesystem::path& path, const std::string& split);

// Downsampled ImageNet (Chrabaszcz et al. 2017) .npz batches: a directory with train_data_batch_<k>.npz (split
// "train", all of them in the order of k) / val_data.npz ("test"), or one such file. Labels 1..1000 -> 0..999.
Dataset load_imagenet_npz(const std::filesystem::path& path, const std::string& split);
// A directory of PNG/JPEG files (recursive, sorted by relative path); labels from dataset.json when present.
Dataset load_image_folder(const std::filesystem::path& dir, int64_t resolution);
// A zip of PNG/JPEG images with EDM's dataset.json ({"labels": [[fname, label], ...]}).
Dataset load_image_zip(const std::filesystem::path& zip_path, int64_t resolution);
// Stacks decoded images (name, uint8 [C, H, W]) into a Dataset; every image must share the shape unless
// resolution > 0 (then each is resized). Labels are looked up by name when `labels` is non-empty.
Dataset stack_images(const std::vector<std::pair<std::string, torch::Tensor>>& images,
                     const std::map<std::string, int64_t>& labels, int64_t resolution, const std::string& source);
// Labels from EDM's dataset.json text: maps file names to labels; null labels -> empty map.
std::map<std::string, int64_t> parse_dataset_json(const std::string& text, const std::string& source_name);

// 2-D toy distributions, float32 [n, 2], deterministic in seed: eight-gaussians, two-moons, checkerboard, swiss-roll
// (standardized), and the hard suite at raw scales: thin-rings, thin-spiral, skewed-checkerboard, mixed-widths.
torch::Tensor make_toy_points(const std::string& name, int64_t n, uint64_t seed);
// User points: .npy float32/float64 [N, 2] or CSV with 2 numeric columns (an optional header line).
torch::Tensor read_points_file(const std::filesystem::path& path);

// Transforms (uint8 [N, C, H, W] in, uint8 out).
// Centered padding to resolution x resolution with value 0 (= -1 after images_to_float).
torch::Tensor pad_images(const torch::Tensor& images, int64_t resolution);
// Bilinear resize (antialiased when shrinking), rounded back to uint8.
torch::Tensor resize_images(const torch::Tensor& images, int64_t resolution);
// Indices of the first `count` items of a permutation of [0, n) seeded from seed (sorted ascending).
torch::Tensor subset_indices(int64_t n, int64_t count, uint64_t seed);

}  // namespace onestep
