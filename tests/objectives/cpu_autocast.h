#pragma once
#include <ATen/autocast_mode.h>

namespace onestep::testing {

// CPU autocast to bfloat16 for the scope, set up as the trainer's train.bf16 sets up CUDA autocast (a nesting level,
// its weight cache cleared when the outermost scope ends).
class CpuBf16Autocast {
 public:
  CpuBf16Autocast() {
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::increment_nesting();
  }
  ~CpuBf16Autocast() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCPU, false);
  }
};

}  // namespace onestep::testing
