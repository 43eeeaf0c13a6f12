#include "core/device.h"

#include "error_message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ATen/Context.h>
#include <torch/cuda.h>

namespace onestep {
namespace {

using ::testing::HasSubstr;
using onestep::testing::error_of;

TEST(Device, ChoiceIsParsedOnceAndNamesItsKey) {
  EXPECT_EQ(parse_device_choice("auto", "train.device"), DeviceChoice::kAuto);
  EXPECT_EQ(parse_device_choice("cpu", "train.device"), DeviceChoice::kCpu);
  EXPECT_EQ(parse_device_choice("cuda", "--device"), DeviceChoice::kCuda);
  EXPECT_EQ(error_of([] { parse_device_choice("gpu", "--device"); }),
            "--device: unknown device 'gpu' (choices: auto, cpu, cuda)");
  for (auto choice : {DeviceChoice::kAuto, DeviceChoice::kCpu, DeviceChoice::kCuda})
    EXPECT_EQ(parse_device_choice(device_choice_name(choice), "k"), choice);
  EXPECT_TRUE(resolve_device(DeviceChoice::kCpu, "train.device").is_cpu());
  if (!torch::cuda::is_available()) {
    EXPECT_TRUE(resolve_device(DeviceChoice::kAuto, "train.device").is_cpu());
    EXPECT_EQ(error_of([] { resolve_device(DeviceChoice::kCuda, "train.device"); }),
              "train.device = cuda but no CUDA device is available");
  }
}

// torchrun / onestep launch show every GPU: local rank r takes GPU r. A SLURM task bound to its own GPU
// (--gpus-per-task=1) sees one device while SLURM_LOCALID runs up to 7: it takes that one.
TEST(Device, RankGpuIsTheLocalRankAmongTheVisibleGpus) {
  EXPECT_EQ(rank_gpu_index(0, 8), 0);
  EXPECT_EQ(rank_gpu_index(3, 8), 3);
  EXPECT_EQ(rank_gpu_index(7, 1), 0);
  EXPECT_EQ(rank_gpu_index(5, 2), 1);  // --gpus-per-task=2: each task's own two GPUs
  EXPECT_THAT(error_of([] { rank_gpu_index(0, 0); }), HasSubstr("no CUDA device is visible"));
  EXPECT_TRUE(rank_device(c10::Device(c10::kCPU), 5).is_cpu());
}

}  // namespace
}  // namespace onestep
