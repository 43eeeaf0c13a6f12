// One fuzz driver per reader of untrusted files. Each takes arbitrary bytes and must either succeed or
// throw onestep::Error: anything else (a LibTorch error, std::bad_alloc, a crash, a hang) is a finding.
// Readers that only take a path get the bytes through a per-process scratch file.
#include "fuzz/targets.h"

#include "config/config.h"
#include "data/formats.h"
#include "io/image_io.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/zip.h"
#include "precond/model.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace onestep::fuzz {
namespace {

std::filesystem::path scratch_file(const std::string& name, const std::string& bytes) {
  const auto dir = std::filesystem::temp_directory_path() / ("onestep_fuzz_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

void safetensors(const std::string& bytes) { parse_safetensors(bytes, "fuzz.safetensors"); }

// The whole path of `sample --ckpt`: header, metadata, the architecture check and the build under a budget.
void checkpoint(const std::string& bytes) { load_model(scratch_file("model.safetensors", bytes)); }

void npy(const std::string& bytes) { decode_npy(bytes, "fuzz.npy"); }

void npz(const std::string& bytes) { read_npz(scratch_file("arrays.npz", bytes)); }

void zip(const std::string& bytes) {
  ZipReader reader(bytes, "fuzz.zip");
  for (const auto& entry : reader.entries()) reader.read(entry);
}

void idx(const std::string& bytes) { read_idx_images(scratch_file("images-idx3-ubyte.gz", bytes)); }

void image(const std::string& bytes) { decode_image(bytes, "fuzz.png"); }

void toml(const std::string& bytes) { parse_toml(bytes, "fuzz.toml"); }

void dataset_json(const std::string& bytes) { parse_dataset_json(bytes, "dataset.json"); }

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"safetensors", safetensors}, {"checkpoint", checkpoint}, {"npy", npy},   {"npz", npz},
      {"zip", zip},                 {"idx", idx},               {"image", image}, {"toml", toml},
      {"dataset_json", dataset_json}};
  return all;
}

const Target* find_target(const std::string& name) {
  for (const auto& t : targets())
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace onestep::fuzz
