#pragma once
// The raw networks F_theta that preconditioning wraps (SongUNet: DDPM++/NCSN++, and an MLP for 2-D points).
// Their layers and names follow EDM's (docs/methods.md section 9).
#include "config/config.h"

#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace onestep {

// F(x, noise_labels, class_labels, augment_labels): x [B, C, H, W] (or [B, D] for points), noise_labels [B]
// (c_noise(sigma)), class_labels [B, label_dim] float one-hot or undefined, augment_labels [B, augment_dim] or undefined.
class NetworkImpl : public torch::nn::Module {
 public:
  virtual torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& noise_labels,
                                const torch::Tensor& class_labels = {},
                                const torch::Tensor& augment_labels = {}) = 0;
  // Multiply-accumulates of one forward pass on one sample, counted from the layers (convolutions, linears,
  // attention matmuls, resampling filters). Networks that cannot count say so with an onestep::Error.
  virtual int64_t forward_macs() const;
};

// Builds the network of the [model] section (key `arch`: "songunet" | "mlp"); `effective` receives the
// section with every default filled in (what the checkpoint metadata stores).
std::shared_ptr<NetworkImpl> build_network(const Json& root, Json* effective = nullptr);

// Shapes of the tensors a file stores, by name relative to the network ("layers.0.weight", "enc.32x32_conv.weight").
using StoredShapes = std::map<std::string, std::vector<int64_t>>;
// Checks the [model] section against the tensors a file stores before anything is built, so that a checkpoint
// whose metadata disagrees with its tensors is refused with the key that is wrong ("model.num_layers = 1000000000,
// but the file stores 4 hidden layers") instead of allocating what the metadata asks for.
void check_network_against_stored(const Json& root, const StoredShapes& stored);
// The stored shape of `name`, or nullptr; and a shape as "[256, 2]" for messages.
const std::vector<int64_t>* stored_shape(const StoredShapes& stored, const std::string& name);
std::string shape_text(const std::vector<int64_t>& shape);
// The numbers N of stored names "<prefix>N<terminator>...": the layer indices ("layers.", '.') of an MLP, the
// encoder resolutions ("enc.", 'x') of a SongUNet.
std::set<int64_t> stored_name_numbers(const StoredShapes& stored, const std::string& prefix, char terminator);

}  // namespace onestep
