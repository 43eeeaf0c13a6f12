#pragma once
// Sharded sampling and evaluation (`onestep sample`, `onestep eval` under a launcher): a job of n samples made in
// batches of `batch` is split over the ranks in whole batches, each rank a contiguous range of sample indices.
// Every batch draws from its own generator (samplers/sampling_job.h: batch_generator), so the samples, and the
// numbers computed from them, do not depend on the number of processes. The rows come back to rank 0 in order.
#include <torch/types.h>

#include <cstdint>

namespace onestep {

class Communicator;

struct SampleRange {
  int64_t begin = 0, end = 0;  // sample indices [begin, end), a multiple of the batch at begin
  int64_t size() const { return end - begin; }
};

// The samples of `rank` of `world`: batches [B r / W, B (r + 1) / W) of the B = ceil(n / batch) batches (a rank may
// get none when there are fewer batches than ranks).
SampleRange rank_samples(int64_t n, int64_t batch, int rank, int world);
// The range of this process: all of [0, n) without a communicator.
SampleRange own_samples(const Communicator* communicator, int64_t n, int64_t batch);

// Rank 0: the rows of every rank in rank order, [n, ...] (on the CPU); other ranks: an undefined tensor. `rows`
// are this rank's rows (own_samples(...).size() of them, shaped [rows, row_shape...]; with no rows an empty
// tensor of the right row shape and dtype). Without a communicator: `rows` itself.
torch::Tensor gather_rows_to_main(Communicator* communicator, const torch::Tensor& rows, int64_t n, int64_t batch,
                                  const char* what);

}  // namespace onestep
