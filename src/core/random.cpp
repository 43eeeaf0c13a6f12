#include "core/random.h"

#include "core/error.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>

#include <mutex>

namespace onestep {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

at::Generator make_generator(const c10::Device& device, uint64_t seed) {
  at::Generator generator;
  if (device.is_cuda()) {
    require(at::detail::getCUDAHooks().hasCUDA(), "cannot make a random generator on ", device.str(),
            ": this build or machine has no CUDA");
    const c10::DeviceIndex index = device.has_index() ? device.index() : 0;
    generator = at::detail::getCUDAHooks().getNewGenerator(index);
  } else {
    require(device.is_cpu(), "random generators exist for cpu and cuda devices, not ", device.str());
    generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  }
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_current_seed(seed);
  return generator;
}

c10::Device generator_device(const at::Generator& generator) { return generator.device(); }

void require_generator_on(const at::Generator& generator, const c10::Device& device, const char* what) {
  require(generator.defined(), what, ": no random generator given");
  const c10::Device own = generator.device();
  const bool same_type = own.type() == device.type();
  // A CUDA generator without an index and a device without one both mean the current device.
  const bool same_index = !device.is_cuda() || !own.has_index() || !device.has_index() || own.index() == device.index();
  require(same_type && same_index, what, ": a random draw on ", device.str(), " was given a generator of ", own.str(),
          " (each draw must use a generator of the device it draws on)");
}

at::Tensor random_normal(c10::IntArrayRef shape, at::Generator& generator, const c10::Device& device,
                         c10::ScalarType dtype, const char* what) {
  require_generator_on(generator, device, what);
  return at::randn(shape, generator, at::TensorOptions().dtype(dtype).device(device));
}

at::Tensor random_uniform(c10::IntArrayRef shape, at::Generator& generator, const c10::Device& device,
                          c10::ScalarType dtype, const char* what) {
  require_generator_on(generator, device, what);
  return at::rand(shape, generator, at::TensorOptions().dtype(dtype).device(device));
}

at::Tensor random_integers(int64_t high, c10::IntArrayRef shape, at::Generator& generator, const c10::Device& device,
                           const char* what) {
  require_generator_on(generator, device, what);
  return at::randint(high, shape, generator, at::TensorOptions().dtype(at::kLong).device(device));
}

at::Tensor random_categorical(const at::Tensor& probabilities, int64_t count, at::Generator& generator,
                              const char* what) {
  require_generator_on(generator, probabilities.device(), what);
  return at::multinomial(probabilities, count, /*replacement=*/true, generator);
}

at::Tensor generator_state(const at::Generator& generator) {
  at::Generator handle = generator;
  std::lock_guard<std::mutex> lock(handle.mutex());
  return handle.get_state();
}

void set_generator_state(at::Generator& generator, const at::Tensor& state, const std::string& what) {
  std::lock_guard<std::mutex> lock(generator.mutex());
  try {
    generator.set_state(state.to(at::kByte).cpu().contiguous());
  } catch (const c10::Error& e) {
    fail("random state '", what, "' does not fit the ", generator.device().str(), " generator (",
         e.what_without_backtrace(), ")");
  }
}

}  // namespace onestep
