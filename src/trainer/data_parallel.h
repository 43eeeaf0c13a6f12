#pragma once
// The trainer's one door to the other ranks of a data-parallel run (distributed/communicator.h): the initial
// weights from rank 0, the loss of the global batch, the gradient average around backward, and each rank's own
// dropout stream. Without a communicator every call is what a single process does, so the training loop reads
// the same either way.
#include "precond/model.h"

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace onestep {

class Communicator;
class GradientAverager;

class DataParallel {
 public:
  explicit DataParallel(std::shared_ptr<Communicator> communicator);
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  bool active() const { return communicator_ != nullptr; }
  int rank() const;
  int world_size() const;
  int local_rank() const;
  bool is_main() const { return rank() == 0; }  // rank 0 alone writes metrics, checkpoints and sample grids

  // Every rank starts from rank 0's weights (the same seed gives the same ones; --init reads the same file).
  void broadcast_weights(Denoiser& model);
  // Averages the gradients of `parameters` over the ranks from now on (GradientAverager).
  void average_gradients_of(std::vector<torch::Tensor> parameters);
  // The loss of the global batch from this rank's mean loss (a 0-d float64): the mean over the ranks' equal-sized
  // slices, so that every rank skips a non-finite step together. One host synchronisation.
  double global_loss(const torch::Tensor& local_loss);
  // `loss`.backward() with the gradients averaged over the ranks (the earlier micro-batches' gradients that .grad
  // already holds included).
  void backward(const torch::Tensor& loss);

  // Ranks other than 0 draw their dropout masks from a stream of their own per step (rank 0's is the checkpointed
  // default generator), so that the ranks' masks are independent and resume exactly: while an object lives, the
  // default generator of `device` of a rank > 0 is seeded from (seed, step, rank); its state is restored after.
  class DropoutStream {
   public:
    DropoutStream(const DataParallel& ranks, const torch::Device& device, uint64_t seed, int64_t step);
    ~DropoutStream();
    DropoutStream(const DropoutStream&) = delete;
    DropoutStream& operator=(const DropoutStream&) = delete;

   private:
    std::optional<at::Generator> generator_;
    torch::Tensor saved_state_;
  };

 private:
  std::shared_ptr<Communicator> communicator_;
  std::unique_ptr<GradientAverager> averager_;
};

// The default generator of `device`, which dropout draws from.
at::Generator default_generator(const torch::Device& device);

}  // namespace onestep
