#include "distributed/sharding.h"

#include "core/error.h"
#include "distributed/communicator.h"

#include <algorithm>

namespace onestep {

SampleRange rank_samples(int64_t n, int64_t batch, int rank, int world) {
  require(n >= 0 && batch >= 1 && world >= 1 && rank >= 0 && rank < world, "rank_samples: bad arguments (n ", n,
          ", batch ", batch, ", rank ", rank, " of ", world, ")");
  const int64_t batches = (n + batch - 1) / batch;
  const int64_t first = batches * rank / world, last = batches * (rank + 1) / world;
  return {std::min(n, first * batch), std::min(n, last * batch)};
}

SampleRange own_samples(const Communicator* communicator, int64_t n, int64_t batch) {
  if (communicator == nullptr) return rank_samples(n, batch, 0, 1);
  return rank_samples(n, batch, communicator->rank(), communicator->world_size());
}

torch::Tensor gather_rows_to_main(Communicator* communicator, const torch::Tensor& rows, int64_t n, int64_t batch,
                                  const char* what) {
  if (communicator == nullptr) return rows;
  const int world = communicator->world_size();
  std::vector<int64_t> counts;
  int64_t most = 0;
  for (int r = 0; r < world; ++r) {
    counts.push_back(rank_samples(n, batch, r, world).size());
    most = std::max(most, counts.back());
  }
  const int64_t own = counts[static_cast<size_t>(communicator->rank())];
  require(rows.defined() && rows.dim() >= 1 && rows.size(0) == own, what, ": rank ", communicator->rank(), " has ",
          rows.defined() && rows.dim() >= 1 ? rows.size(0) : 0, " rows, its share is ", own);
  // Gather moves tensors of one shape: every rank's rows padded to the largest share.
  std::vector<int64_t> shape(rows.sizes().begin(), rows.sizes().end());
  shape[0] = std::max<int64_t>(most, 1);
  torch::Tensor padded = torch::zeros(shape, rows.options().device(communicator->collective_device()));
  if (own > 0) padded.narrow(0, 0, own).copy_(rows);
  const std::vector<torch::Tensor> parts = communicator->gather_to_main(padded, what);
  if (!communicator->is_main()) return {};
  std::vector<torch::Tensor> kept;
  for (int r = 0; r < world; ++r) kept.push_back(parts[static_cast<size_t>(r)].narrow(0, 0, counts[r]).cpu());
  return torch::cat(kept);
}

}  // namespace onestep
