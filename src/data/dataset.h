#pragma once
// Datasets held in memory (images as uint8, points as float32) and the batch loader that feeds training.
// [data] section of the configuration.
#include "config/config.h"

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace onestep {

struct DataConfig {
  // fashion-mnist | mnist | idx | cifar10 | folder | zip | imagenet-npz (downsampled ImageNet .npz batches) | points |
  // eight-gaussians | two-moons | checkerboard | swiss-roll (these four standardized) | thin-rings | thin-spiral |
  // skewed-checkerboard | mixed-widths (the hard suite, raw units)
  std::string dataset = "fashion-mnist";
  std::string path;          // file or directory; empty = the dataset's default location (Debian's package for FMNIST)
  std::string split = "train";  // train | test
  int64_t resolution = 0;    // 0 = native; otherwise the target H = W
  std::string resize = "pad";  // pad (centered zero padding, 28 -> 32) | resize (bilinear)
  bool flip = false;         // random horizontal flip per batch
  bool labels = false;       // use class labels (conditional training)
  int64_t subset = 0;        // 0 = all; otherwise the first `subset` items after a seeded shuffle
  int64_t num_points = 100000;  // size of a built-in 2-D toy distribution
  int64_t seed = 0;          // seeds toy-data generation and the subset choice
  // The classes the labels stand for, as the data named them (the subfolders of a folder dataset); written by
  // `train` into the run's config.toml and checked against the data when the run resumes. Empty: unnamed.
  std::vector<std::string> class_names;
  // Points only: how training maps them to the model's units, where their spread matches sigma_data (see
  // data/point_scaling.h): isotropic | per-dimension | none. Samples come back in the data's own units.
  std::string normalize = "isotropic";

  static DataConfig from_config(const Json& root);  // reads [data], rejects unknown keys
  bool is_toy_distribution() const;  // a built-in 2-D distribution, so fresh draws exist
  Json to_json() const;
};

struct Dataset {
  torch::Tensor samples;  // uint8 [N, C, H, W] for images; float32 [N, D] for points
  torch::Tensor labels;   // int64 [N], or undefined when the data has none
  int64_t num_classes = 0;
  std::vector<std::string> class_names;  // label k's name when the data names its classes (folders), else empty
  std::string name;
  bool is_image() const { return samples.dim() == 4; }
  int64_t size() const { return samples.size(0); }
};

Dataset load_dataset(const DataConfig& config);
// load_dataset in two parts, for inspecting a dataset (`onestep data`): read_dataset reads it (data.resolution and
// data.subset applied) with every label it has; select_labels applies data.labels (checks that the labels exist
// and that data.class_names names the same classes, or drops them for unconditional training).
Dataset read_dataset(const DataConfig& config);
void select_labels(Dataset& data, const DataConfig& config);
// One human-readable summary: count, shape, per-channel mean/std of the [-1, 1] floats, label histogram.
std::string describe_dataset(const Dataset& data);

// uint8 [0, 255] -> float32 [-1, 1] (x / 127.5 - 1), on the device of `images`.
torch::Tensor images_to_float(const torch::Tensor& images);
// float [-1, 1] -> uint8, quantized as the field does for FID: clamp(x * 127.5 + 128, 0, 255) (docs/methods.md 10).
torch::Tensor float_to_images(const torch::Tensor& x);

struct Batch {
  torch::Tensor x;       // float32: images in [-1, 1] ([B, C, H, W]) or points ([B, D])
  torch::Tensor labels;  // int64 [B] or undefined
  // Data-parallel runs: this process holds rows [offset, offset + B) of a global batch of global_size rows
  // (0 = not a slice: the global batch is this one).
  int64_t offset = 0, global_size = 0;

  int64_t global_batch() const { return global_size > 0 ? global_size : x.size(0); }
  // Per-sample random draws are made for the whole global batch and sliced, so that every sample gets the
  // same draw whatever the number of processes: `draws` has global_batch() rows, the result this batch's.
  torch::Tensor own_rows(const torch::Tensor& draws) const {
    return global_size > 0 && global_size != x.size(0) ? draws.narrow(0, offset, x.size(0)) : draws;
  }
  // Rows [start, start + count) of this batch, keeping their place in the global batch (the micro-batches of
  // gradient accumulation draw what the whole batch would have drawn for them).
  Batch rows(int64_t start, int64_t count) const {
    Batch part;
    part.x = x.narrow(0, start, count);
    if (labels.defined()) part.labels = labels.narrow(0, start, count);
    part.offset = offset + start;
    part.global_size = global_batch();
    return part;
  }
  // The shape of a per-sample draw like x for the global batch.
  std::vector<int64_t> global_shape() const {
    std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
    shape[0] = global_batch();
    return shape;
  }
};

// The rows of every global batch that one process of a data-parallel run takes.
struct BatchSlice {
  int64_t offset = 0, count = 0;  // count 0 = the whole batch
};

// Where a loader is in its stream: enough to continue a killed run exactly.
struct LoaderState {
  int64_t epoch = 0;
  int64_t position = 0;  // index into this epoch's permutation
  Json to_json() const;
  static LoaderState from_json(const Json& j);
};

// Deterministic shuffled batches: the permutation of epoch e depends only on (seed, e), flips on (seed, e, position).
// A background thread prepares the next batches so that training never waits on data.
class BatchLoader {
 public:
  // `batch_size` is the global batch; with `slice`, next() gives only its rows [offset, offset + count) (the
  // stream, and so LoaderState, does not depend on the slice). `pin_memory` (CUDA training only: it needs the CUDA
  // runtime) gives batches in page-locked host memory, whose copies to the GPU can be non_blocking.
  BatchLoader(std::shared_ptr<const Dataset> data, int64_t batch_size, uint64_t seed, bool flip,
              int prefetch = 2, BatchSlice slice = {}, bool pin_memory = false);
  ~BatchLoader();
  Batch next();
  LoaderState state() const;          // the state *before* the next call of next()
  void restore(const LoaderState& state);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace onestep
