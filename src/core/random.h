#pragma once
// Every random draw of onestep goes through this file, under one device rule: a draw happens on one device, with
// a generator of that device. PyTorch refuses a CUDA generator for a CPU kernel (and the reverse) deep inside the
// kernel; checking here turns that into one clear line and lets a CPU-only test prove that each caller passes the
// generator of the device it draws on.
//
// Where draws happen:
// - training (objectives): on the device of the batch, with the trainer's generator of that device;
// - sampling (CLI, evaluation, the trainer's sample grids): on the generator's device, then moved. The CLI and the
//   evaluation use a CPU generator, so a seed gives the same latents on every device.
#include <ATen/core/Generator.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>

namespace at {
class Tensor;
}

namespace onestep {

// Deterministic 64-bit mixing (the splitmix64 finalizer over a * golden-ratio + b + a constant) that derives the seed
// of a generator from (seed, epoch, step, batch index, ...): nearby inputs give unrelated seeds.
uint64_t mix_seed(uint64_t a, uint64_t b);

// A new generator of `device` (CPU or CUDA), seeded with `seed`.
at::Generator make_generator(const c10::Device& device, uint64_t seed);

// The device a generator draws on (cuda:<index>, or cpu).
c10::Device generator_device(const at::Generator& generator);

// Errors (one line naming `what`) unless `generator` draws on `device`: same type, and the same index for CUDA.
void require_generator_on(const at::Generator& generator, const c10::Device& device, const char* what);

// Standard normal / uniform [0, 1) of `shape` and `dtype`, drawn on `device` with `generator` (which must be of
// that device).
at::Tensor random_normal(c10::IntArrayRef shape, at::Generator& generator, const c10::Device& device,
                         c10::ScalarType dtype, const char* what);
at::Tensor random_uniform(c10::IntArrayRef shape, at::Generator& generator, const c10::Device& device,
                          c10::ScalarType dtype, const char* what);
// Integers uniform in [0, high), int64, drawn on `device` with `generator`.
at::Tensor random_integers(int64_t high, c10::IntArrayRef shape, at::Generator& generator, const c10::Device& device,
                           const char* what);
// `count` draws with replacement from the categorical distribution `probabilities` (1-D, on the generator's
// device): int64 [count] on that device.
at::Tensor random_categorical(const at::Tensor& probabilities, int64_t count, at::Generator& generator,
                              const char* what);

// The serialized state of a generator (uint8 tensor, CPU), and its restoration; `what` names the state in errors
// (a checkpoint's 'rng.objective', say).
at::Tensor generator_state(const at::Generator& generator);
void set_generator_state(at::Generator& generator, const at::Tensor& state, const std::string& what);

}  // namespace onestep
