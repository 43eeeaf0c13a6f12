// BatchLoader: deterministic shuffled batches with a background prefetch thread.
// Everything a batch depends on is a pure function of (seed, epoch, position), so a LoaderState saved with a
// checkpoint reproduces the exact following batches, whatever the prefetch depth or timing.
#include "data/dataset.h"

#include "core/error.h"
#include "core/random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include "data/formats.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include <dlfcn.h>

namespace onestep {

namespace {

// Batches are small, and a second OpenMP team (one forked from this thread) makes libgomp count more threads than
// cores: it then throttles the spin-wait of every team, and the training thread's many short parallel regions pay
// a futex sleep and wake each. Measured on 2 cores: 150-170 instead of 245-280 img/s for fmnist-ict-cpu, on fresh
// runs only (a resume joins the first loader thread, and its team with it): bench/RESULTS.md "Resume speed".
// ATen's own guard (c10::ParallelGuard) does not stop OpenMP's at::parallel_for, so the thread's OpenMP team size
// is set to 1, after ATen's once-per-thread initialisation (in at::get_num_threads), which would set it back to
// train.threads; looked up at run time because LibTorch may come with another OpenMP runtime, or none.
void serial_openmp_in_this_thread() {
  (void)at::get_num_threads();
  using SetThreads = void (*)(int);
  if (auto set_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads")))
    set_threads(1);
}

}  // namespace

struct BatchLoader::Impl {
  std::shared_ptr<const Dataset> data;
  int64_t batch_size;
  BatchSlice slice;  // count = batch_size when not sliced
  uint64_t seed;
  bool flip;
  int prefetch;
  bool pin_memory;

  // Producer side (worker thread, or the caller when prefetch == 0).
  LoaderState produced;
  int64_t perm_epoch = -1;
  torch::Tensor perm;

  // Consumer side.
  LoaderState consumed;

  std::mutex mutex;
  std::condition_variable not_full, not_empty;
  std::deque<std::pair<LoaderState, Batch>> queue;  // (state after the batch, batch)
  std::exception_ptr error;
  bool stopping = false;
  std::thread worker;

  const torch::Tensor& permutation(int64_t epoch) {
    if (epoch != perm_epoch) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(mix_seed(seed, static_cast<uint64_t>(epoch)));
      perm = torch::randperm(data->size(), gen, torch::kInt64);
      perm_epoch = epoch;
    }
    return perm;
  }

  // Builds the batch that starts at `state` and advances it. The last incomplete batch of an epoch is dropped.
  Batch make(LoaderState& state) {
    if (state.position + batch_size > data->size()) {
      state.epoch += 1;
      state.position = 0;
    }
    const int64_t first = state.position + slice.offset;
    torch::Tensor index = permutation(state.epoch).slice(0, first, first + slice.count);
    Batch b;
    if (slice.count != batch_size) {
      b.offset = slice.offset;
      b.global_size = batch_size;
    }
    torch::Tensor raw = data->samples.index_select(0, index);
    if (data->is_image()) {
      b.x = images_to_float(raw);
      if (flip) {
        std::vector<int64_t> flipped;
        for (int64_t i = 0; i < slice.count; ++i) {
          const uint64_t h = mix_seed(mix_seed(seed ^ 0xF11BULL, static_cast<uint64_t>(state.epoch)),
                                      static_cast<uint64_t>(first + i));
          if (h & 1) flipped.push_back(i);
        }
        if (!flipped.empty()) {
          torch::Tensor rows = torch::tensor(flipped, torch::kInt64);
          b.x.index_copy_(0, rows, b.x.index_select(0, rows).flip({3}));
        }
      }
    } else {
      b.x = raw.to(torch::kFloat32);
    }
    if (data->labels.defined()) b.labels = data->labels.index_select(0, index);
    if (pin_memory) {
      // Page-locked, in the worker thread: the training thread's copy to the GPU can then be asynchronous.
      b.x = b.x.pin_memory();
      if (b.labels.defined()) b.labels = b.labels.pin_memory();
    }
    state.position += batch_size;
    return b;
  }

  void run() {
    serial_openmp_in_this_thread();
    try {
      while (true) {
        {
          std::unique_lock<std::mutex> lock(mutex);
          not_full.wait(lock, [&] { return stopping || static_cast<int>(queue.size()) < prefetch; });
          if (stopping) return;
        }
        LoaderState next = produced;
        Batch b = make(next);
        produced = next;
        std::lock_guard<std::mutex> lock(mutex);
        queue.emplace_back(next, std::move(b));
        not_empty.notify_one();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      error = std::current_exception();
      not_empty.notify_all();
    }
  }

  void start() {
    if (prefetch <= 0) return;
    stopping = false;
    worker = std::thread([this] { run(); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    not_full.notify_all();
    if (worker.joinable()) worker.join();
    queue.clear();
    error = nullptr;
  }
};

BatchLoader::BatchLoader(std::shared_ptr<const Dataset> data, int64_t batch_size, uint64_t seed, bool flip,
                         int prefetch, BatchSlice slice, bool pin_memory)
    : impl_(std::make_unique<Impl>()) {
  require(data != nullptr && data->samples.defined(), "BatchLoader: no dataset");
  require(batch_size > 0, "batch size must be > 0, got ", batch_size);
  require(batch_size <= data->size(), "batch size ", batch_size, " exceeds the dataset size ", data->size(),
          " (", data->name, ")");
  require(!flip || data->is_image(), "horizontal flip applies to images only, not to ", data->name);
  impl_->data = std::move(data);
  if (slice.count == 0) slice = {0, batch_size};
  require(slice.offset >= 0 && slice.count > 0 && slice.offset + slice.count <= batch_size, "batch slice [",
          slice.offset, ", ", slice.offset + slice.count, ") is not inside a batch of ", batch_size);
  impl_->batch_size = batch_size;
  impl_->slice = slice;
  impl_->seed = seed;
  impl_->flip = flip;
  impl_->prefetch = std::max(0, prefetch);
  impl_->pin_memory = pin_memory;
  impl_->start();
}

BatchLoader::~BatchLoader() { impl_->stop(); }

Batch BatchLoader::next() {
  Impl& m = *impl_;
  if (m.prefetch == 0) {
    Batch b = m.make(m.consumed);
    return b;
  }
  std::unique_lock<std::mutex> lock(m.mutex);
  m.not_empty.wait(lock, [&] { return !m.queue.empty() || m.error; });
  if (m.queue.empty() && m.error) std::rethrow_exception(m.error);
  auto [after, batch] = std::move(m.queue.front());
  m.queue.pop_front();
  m.consumed = after;
  m.not_full.notify_one();
  return batch;
}

LoaderState BatchLoader::state() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->consumed;
}

void BatchLoader::restore(const LoaderState& state) {
  require(state.epoch >= 0 && state.position >= 0 && state.position <= impl_->data->size(),
          "loader state (epoch ", state.epoch, ", position ", state.position, ") does not fit a dataset of ",
          impl_->data->size(), " items");
  impl_->stop();
  impl_->consumed = state;
  impl_->produced = state;
  impl_->start();
}

}  // namespace onestep
