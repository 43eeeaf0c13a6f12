#include "trainer/data_parallel.h"

#include "core/random.h"
#include "distributed/communicator.h"
#include "distributed/gradient_averager.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>

#include <mutex>

namespace onestep {

at::Generator default_generator(const torch::Device& device) {
  return device.is_cuda() ? at::globalContext().defaultGenerator(device) : at::detail::getDefaultCPUGenerator();
}

DataParallel::DataParallel(std::shared_ptr<Communicator> communicator) : communicator_(std::move(communicator)) {}

DataParallel::~DataParallel() = default;

int DataParallel::rank() const { return communicator_ ? communicator_->rank() : 0; }

int DataParallel::world_size() const { return communicator_ ? communicator_->world_size() : 1; }

int DataParallel::local_rank() const { return communicator_ ? communicator_->local_rank() : 0; }

void DataParallel::broadcast_weights(Denoiser& model) {
  if (!communicator_) return;
  std::vector<torch::Tensor> state;
  for (auto& [name, t] : model_state(model)) state.push_back(t);
  communicator_->broadcast(state, "broadcast of the initial weights");
}

void DataParallel::average_gradients_of(std::vector<torch::Tensor> parameters) {
  if (communicator_) averager_ = std::make_unique<GradientAverager>(communicator_, std::move(parameters));
}

double DataParallel::global_loss(const torch::Tensor& local_loss) {
  if (!communicator_) return local_loss.item<double>();
  torch::Tensor loss = local_loss.reshape({1}).clone();
  communicator_->sum(loss, "loss all-reduce");
  return loss.item<double>() / communicator_->world_size();
}

void DataParallel::backward(const torch::Tensor& loss) {
  if (averager_) averager_->begin();
  loss.backward();
  if (averager_) averager_->finish();
}

DataParallel::DropoutStream::DropoutStream(const DataParallel& ranks, const torch::Device& device, uint64_t seed,
                                           int64_t step) {
  if (ranks.rank() == 0) return;
  generator_ = default_generator(device);
  std::lock_guard<std::mutex> lock(generator_->mutex());
  saved_state_ = generator_->get_state();
  generator_->set_current_seed(mix_seed(mix_seed(seed ^ 0xD15Bull, static_cast<uint64_t>(step)),
                                        static_cast<uint64_t>(ranks.rank())));
}

DataParallel::DropoutStream::~DropoutStream() {
  if (!generator_) return;
  std::lock_guard<std::mutex> lock(generator_->mutex());
  generator_->set_state(saved_state_);
}

}  // namespace onestep
