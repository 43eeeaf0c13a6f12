// Test helper, not part of onestep: one data-parallel rank (from the launch environment, or a single process)
// computes the trainer's averaged gradient of the first global batch of a small points-iCT configuration and
// rank 0 writes it to a safetensors file. Usage: onestep_gradient_worker RUN_DIR OUT.safetensors [--set k=v ...]
#include "config/config.h"
#include "core/error.h"
#include "data/dataset.h"
#include "distributed/communicator.h"
#include "distributed/launch_env.h"
#include "io/run_dir.h"
#include "io/safetensors.h"
#include "objectives/objective.h"
#include "precond/model.h"
#include "trainer/train_config.h"
#include "trainer/trainer.h"

#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  using namespace onestep;
  try {
    require(argc >= 3, "usage: onestep_gradient_worker RUN_DIR OUT.safetensors [--set section.key=value ...]");
    Json root = load_config_file(resolve_preset("points-ict"));
    root.erase("base");
    // The batch-posterior target is over each process's rows (docs/methods.md): the equivalence under test holds
    // for the papers' single-sample target.
    root["objective"]["target_estimate"] = "single_sample";
    for (int i = 3; i + 1 < argc; i += 2) {
      require(std::string(argv[i]) == "--set", "expected --set, got ", argv[i]);
      apply_override(root, argv[i + 1]);
    }
    const TrainConfig train = TrainConfig::from_config(root);
    torch::manual_seed(static_cast<uint64_t>(train.seed));
    Denoiser model = build_model(root);
    auto objective = build_objective(root, model);
    auto data = std::make_shared<const Dataset>(load_dataset(DataConfig::from_config(root)));

    const LaunchEnv launch = launch_env_from_environment();
    std::shared_ptr<Communicator> communicator;
    if (launch.distributed())
      communicator = Communicator::create(launch, torch::kCPU, std::chrono::seconds(60));
    const bool main_rank = communicator == nullptr || communicator->is_main();
    const std::filesystem::path run_root = std::string(argv[1]) + "/rank" + std::to_string(launch.rank);
    RunDir run(run_root, RunMode::Force);
    Trainer trainer(run, root, train, std::nullopt, model, std::move(objective), data, communicator);
    trainer.set_quiet(true);
    const auto gradients = trainer.next_batch_gradients();
    if (main_rank) save_safetensors(argv[2], gradients);
    if (communicator) communicator->barrier("final barrier");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gradient worker: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
