// CIFAR-10 "binary version": each record is 1 label byte then 3072 bytes (1024 R, 1024 G, 1024 B, row-major 32x32).
#include "data/formats.h"

#include "core/error.h"

#include <fstream>
#include <sstream>

namespace onestep {
namespace {

constexpr int64_t kRecord = 1 + 3 * 32 * 32;

void read_batch(const std::filesystem::path& file, std::vector<torch::Tensor>& images,
                std::vector<torch::Tensor>& labels) {
  std::ifstream in(file, std::ios::binary);
  require(in.good(), "cannot open CIFAR-10 batch ", file.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  require(!bytes.empty(), "CIFAR-10 batch ", file.string(), " is empty");
  require(bytes.size() % kRecord == 0, "CIFAR-10 batch ", file.string(), ": size ", bytes.size(),
          " is not a multiple of the 3073-byte record (truncated or not a CIFAR-10 binary batch)");
  const int64_t n = static_cast<int64_t>(bytes.size()) / kRecord;
  torch::Tensor records = torch::empty({n, kRecord}, torch::kUInt8);
  std::memcpy(records.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  torch::Tensor y = records.select(1, 0).to(torch::kInt64);
  require(y.max().item<int64_t>() <= 9, "CIFAR-10 batch ", file.string(), ": label ", y.max().item<int64_t>(),
          " outside 0..9 (corrupt file)");
  labels.push_back(y);
  images.push_back(records.slice(1, 1).reshape({n, 3, 32, 32}).clone());
}

}  // namespace

Dataset load_cifar10(const std::filesystem::path& path, const std::string& split) {
  std::vector<std::filesystem::path> files;
  if (std::filesystem::is_directory(path)) {
    if (split == "train") {
      for (int i = 1; i <= 5; ++i) files.push_back(path / ("data_batch_" + std::to_string(i) + ".bin"));
    } else {
      files.push_back(path / "test_batch.bin");
    }
    // The tarball unpacks into cifar-10-batches-bin/: accept its parent too.
    if (!std::filesystem::exists(files.front()) && std::filesystem::is_directory(path / "cifar-10-batches-bin")) {
      return load_cifar10(path / "cifar-10-batches-bin", split);
    }
    for (const auto& f : files)
      require(std::filesystem::is_regular_file(f), "CIFAR-10 directory ", path.string(), " lacks ",
              f.filename().string());
  } else {
    files.push_back(path);
  }
  std::vector<torch::Tensor> images, labels;
  for (const auto& f : files) read_batch(f, images, labels);
  Dataset d;
  d.samples = torch::cat(images);
  d.labels = torch::cat(labels);
  d.num_classes = 10;
  d.name = "cifar10";
  return d;
}

}  // namespace onestep
