#pragma once
// Data-parallel gradient averaging as PyTorch's DistributedDataParallel does it: parameters are packed into
// buckets (about 25 MB, in reverse registration order, roughly the order in which backward produces their
// gradients); an autograd hook on each parameter copies its gradient into its bucket, and a bucket whose
// gradients are all in starts its all-reduce while backward continues. finish() completes the rest and leaves
// every .grad holding the mean over the ranks. Gradient accumulation: what .grad holds when backward starts (the
// earlier micro-batches' sum, accumulated without begin()) is averaged together with the new gradient.
//
// Buckets start strictly in index order (a later bucket that fills first waits for the earlier ones), so that
// every rank issues the same collectives in the same order.
//
// A parameter without a gradient on a rank (unused in that rank's graph this step: a branch taken on one rank
// only) contributes zeros there. Each bucket carries one flag per parameter, "this rank has a gradient", summed
// with the gradients in the same all-reduce: a parameter with a gradient on any rank gets the mean on every rank
// (zero-filled where it had none, as DDP's find_unused_parameters does), one with a gradient on none keeps none
// everywhere. So every rank's optimizer updates the same parameters and the weights never drift apart.
#include "distributed/communicator.h"

#include <torch/types.h>

#include <memory>
#include <mutex>
#include <vector>

namespace onestep {

class GradientAverager {
 public:
  GradientAverager(std::shared_ptr<Communicator> communicator, std::vector<torch::Tensor> parameters,
                   int64_t bucket_bytes = 25 << 20);
  ~GradientAverager();
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  // Before backward: the hooks start collecting.
  void begin();
  // After backward: starts the buckets still waiting, waits for all, writes the means into .grad.
  void finish();
  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> parameters;  // indices into parameters_
    std::vector<int64_t> offsets;
    int64_t flags_at = 0;  // flat[flags_at + slot]: whether this rank has a gradient for parameter `slot`
    size_t remaining = 0;
    bool started = false;
  };
  void on_gradient(size_t parameter, const torch::Tensor& grad);
  void start_ready_buckets();

  std::shared_ptr<Communicator> communicator_;
  std::vector<torch::Tensor> parameters_;
  std::vector<unsigned> hook_ids_;
  std::vector<size_t> bucket_of_, slot_of_;
  std::vector<char> received_;
  std::vector<Bucket> buckets_;
  size_t next_to_start_ = 0;
  bool active_ = false;
  std::mutex mutex_;  // hooks run on autograd's device threads
};

}  // namespace onestep
