// Test helper, not part of onestep: one data-parallel rank (from the launch environment) runs the gradient
// averager on a small network whose graph depends on the rank, and writes, for every parameter, its local
// gradient ("local.<name>", before averaging; absent where the rank has none) and the averaged one ("avg.<name>",
// absent where the averager left none), plus "buckets" (the bucket count), to OUT_DIR/rank<r>.safetensors.
// Usage: onestep_averager_worker OUT_DIR BUCKET_BYTES
#include "core/error.h"
#include "core/random.h"
#include "distributed/communicator.h"
#include "distributed/gradient_averager.h"
#include "distributed/launch_env.h"
#include "io/safetensors.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace {

struct Net : torch::nn::Module {
  torch::nn::Linear input{nullptr}, output{nullptr}, rank1_branch{nullptr}, never_used{nullptr};
  std::vector<torch::nn::Linear> hidden;
  Net() {
    input = register_module("input", torch::nn::Linear(4, 8));
    for (int i = 0; i < 4; ++i) hidden.push_back(register_module("hidden" + std::to_string(i), torch::nn::Linear(8, 8)));
    output = register_module("output", torch::nn::Linear(8, 3));
    rank1_branch = register_module("rank1_branch", torch::nn::Linear(8, 3));
    never_used = register_module("never_used", torch::nn::Linear(2, 2));
  }
  // Rank 1 adds a branch that rank 0 never runs: its parameters have a gradient on rank 1 only.
  torch::Tensor loss(const torch::Tensor& x, int rank) {
    torch::Tensor h = torch::tanh(input(x));
    for (auto& layer : hidden) h = torch::tanh(layer(h));
    torch::Tensor out = output(h);
    if (rank == 1) out = out + rank1_branch(h);
    return out.square().sum() * (1.0 + rank);
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace onestep;
  try {
    require(argc == 3, "usage: onestep_averager_worker OUT_DIR BUCKET_BYTES");
    const LaunchEnv launch = launch_env_from_environment();
    require(launch.distributed(), "averager worker: run under a launch environment (RANK, WORLD_SIZE, ...)");
    auto communicator = Communicator::create(launch, torch::kCPU, std::chrono::seconds(30));
    torch::manual_seed(0);  // the same initial weights on every rank
    auto net = std::make_shared<Net>();
    std::vector<torch::Tensor> parameters;
    for (const auto& p : net->parameters()) parameters.push_back(p);
    GradientAverager averager(communicator, parameters, std::stoll(argv[2]));
    at::Generator generator = make_generator(torch::kCPU, static_cast<uint64_t>(100 + launch.rank));
    const torch::Tensor x = torch::randn({5, 4}, generator);  // each rank its own rows

    std::vector<std::pair<std::string, torch::Tensor>> out;
    net->loss(x, launch.rank).backward();  // the averager is not active: a plain local backward
    for (auto& item : net->named_parameters()) {
      if (item.value().grad().defined()) out.emplace_back("local." + item.key(), item.value().grad().clone());
      item.value().mutable_grad() = torch::Tensor();
    }
    averager.begin();
    net->loss(x, launch.rank).backward();
    averager.finish();
    for (auto& item : net->named_parameters())
      if (item.value().grad().defined()) out.emplace_back("avg." + item.key(), item.value().grad().clone());
    out.emplace_back("buckets", torch::tensor({averager.bucket_count()}));
    save_safetensors(std::filesystem::path(argv[1]) / ("rank" + std::to_string(launch.rank) + ".safetensors"), out);
    communicator->barrier("final barrier");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "averager worker: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
