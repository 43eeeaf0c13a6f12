// The device rule of core/random.h: every draw uses a generator of the device it draws on. A generator that claims
// to be a CUDA generator (no CUDA needed) shows, on a CPU-only machine, that each objective routes its draws
// through the checked helpers instead of handing a generator of the wrong device to a PyTorch kernel.
#include "core/device.h"
#include "core/random.h"
#include "objectives/objective.h"
#include "schedules/schedules.h"
#include "trainer/train_config.h"
#include "trainer/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <c10/core/GeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "error_message.h"
#include "test_device.h"
#include "build_paths.h"

using namespace onestep;
using onestep::testing::error_of;
using ::testing::HasSubstr;

namespace {

// Reports cuda:0 as its device and draws nothing: any kernel that receives it fails.
class ClaimsCudaGenerator : public c10::GeneratorImpl {
 public:
  ClaimsCudaGenerator() : c10::GeneratorImpl(c10::Device(c10::kCUDA, 0), c10::DispatchKeySet(c10::DispatchKey::CUDA)) {}
  void set_current_seed(uint64_t) override {}
  void set_offset(uint64_t) override {}
  uint64_t get_offset() const override { return 0; }
  uint64_t current_seed() const override { return 0; }
  uint64_t seed() override { return 0; }
  void set_state(const c10::TensorImpl&) override {}
  c10::intrusive_ptr<c10::TensorImpl> get_state() const override { return {}; }

 private:
  ClaimsCudaGenerator* clone_impl() const override { return new ClaimsCudaGenerator(); }
};

at::Generator claims_cuda() { return at::Generator(c10::make_intrusive<ClaimsCudaGenerator>()); }

Json points_root(const std::string& method) {
  Json objective{{"method", method}};
  if (method == "ct") objective["teacher"] = "ema";
  return Json{{"model", {{"arch", "mlp"}, {"in_dim", 2}, {"hidden", 16}, {"num_layers", 2}, {"noise_channels", 8}}},
              {"precond", {{"train_scalings", method == "edm" ? "edm" : "consistency"}}},
              {"objective", objective}};
}

}  // namespace

TEST(RandomDraws, MismatchedGeneratorIsOneClearLine) {
  auto generator = claims_cuda();
  EXPECT_THAT(error_of([&] { random_normal({4}, generator, torch::kCPU, torch::kFloat32, "EDM noise"); }),
              HasSubstr("EDM noise: a random draw on cpu was given a generator of cuda:0"));
  EXPECT_THAT(error_of([&] { random_uniform({4}, generator, torch::kCPU, torch::kFloat32, "u"); }),
              HasSubstr("a random draw on cpu was given a generator of cuda:0"));
  EXPECT_THAT(error_of([&] { random_integers(3, {4}, generator, torch::kCPU, "labels"); }),
              HasSubstr("labels: a random draw on cpu"));
  EXPECT_THAT(error_of([&] { random_categorical(torch::ones({3}, torch::kFloat64), 4, generator, "index"); }),
              HasSubstr("index: a random draw on cpu"));
  auto cpu = make_generator(torch::kCPU, 1);
  EXPECT_THAT(error_of([&] { require_generator_on(cpu, torch::Device(torch::kCUDA, 0), "ECT noise"); }),
              HasSubstr("ECT noise: a random draw on cuda:0 was given a generator of cpu"));
  EXPECT_THAT(error_of([&] { require_generator_on(at::Generator(), torch::kCPU, "x"); }),
              HasSubstr("x: no random generator given"));
  EXPECT_EQ(error_of([&] { require_generator_on(cpu, torch::kCPU, "x"); }), "(no error)");
}

TEST(RandomDraws, SchedulesDrawOnTheDeviceTheyAreAskedFor) {
  auto generator = claims_cuda();
  EXPECT_THAT(error_of([&] { sample_lognormal(4, -1.1, 2.0, generator, torch::kCPU); }),
              HasSubstr("lognormal noise levels: a random draw on cpu was given a generator of cuda:0"));
  EXPECT_THAT(error_of([&] { sample_indices({0.5, 0.5}, 4, generator, torch::kCPU); }),
              HasSubstr("index distribution: a random draw on cpu was given a generator of cuda:0"));
}

// Every objective draws on the batch's device with the generator it is given: a CPU batch with a generator of
// another device must stop at the check, not inside a kernel (a c10::Error, which error_of does not catch).
TEST(RandomDraws, EveryObjectiveChecksItsGeneratorAgainstTheBatchDevice) {
  for (const std::string method : {"edm", "ict", "ect", "ct"}) {
    SCOPED_TRACE(method);
    const Json root = points_root(method);
    torch::manual_seed(0);
    Denoiser model = build_model(root);
    auto objective = build_objective(root, model);
    Batch batch{torch::randn({8, 2}), {}};
    auto generator = claims_cuda();
    EXPECT_THAT(error_of([&] { objective->compute_loss(model, batch, TrainProgress{0, 100, 0}, generator); }),
                HasSubstr("a random draw on cpu was given a generator of cuda:0"));
  }
}

TEST(RandomDraws, CpuGeneratorDrawsAreThoseOfPyTorchsCpuGenerator) {
  // The helpers change where a draw is checked, not what it draws: CPU runs and fixtures are unchanged.
  auto ours = make_generator(torch::kCPU, 1234);
  auto reference = at::make_generator<at::CPUGeneratorImpl>(1234);
  EXPECT_TRUE(torch::equal(random_normal({5, 3}, ours, torch::kCPU, torch::kFloat32, "x"),
                           at::randn({5, 3}, reference, torch::kFloat32)));
  EXPECT_TRUE(torch::equal(random_uniform({7}, ours, torch::kCPU, torch::kFloat64, "x"),
                           at::rand({7}, reference, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(random_integers(10, {9}, ours, torch::kCPU, "x"),
                           at::randint(10, {9}, reference, torch::kLong)));
  const auto p = torch::tensor({0.1, 0.2, 0.7}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(random_categorical(p, 50, ours, "x"), at::multinomial(p, 50, true, reference)));
}

TEST(RandomDraws, GeneratorStateRoundTripsAndBadStatesAreNamed) {
  const auto device = onestep::testing::test_device();
  auto generator = make_generator(device, 99);
  EXPECT_EQ(generator_device(generator).type(), device.type());
  const auto state = generator_state(generator);
  const auto first = random_normal({16}, generator, device, torch::kFloat32, "x");
  set_generator_state(generator, state, "rng.objective");
  EXPECT_TRUE(torch::equal(first, random_normal({16}, generator, device, torch::kFloat32, "x")));
  EXPECT_EQ(first.device().type(), device.type());
  EXPECT_THAT(error_of([&] { set_generator_state(generator, torch::zeros({3}, torch::kUInt8), "rng.objective"); }),
              HasSubstr("random state 'rng.objective' does not fit the"));
}

TEST(RandomDraws, CudaGeneratorsDrawOnCudaAndRefuseCpuDraws) {
  ONESTEP_SKIP_WITHOUT_CUDA();
  const torch::Device cuda(torch::kCUDA, 0);
  auto generator = make_generator(cuda, 5);
  const auto x = random_normal({1000}, generator, cuda, torch::kFloat32, "x");
  EXPECT_TRUE(x.is_cuda());
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 0.15);
  auto again = make_generator(cuda, 5);
  EXPECT_TRUE(torch::equal(x, random_normal({1000}, again, cuda, torch::kFloat32, "x")));
  EXPECT_THAT(error_of([&] { random_normal({4}, generator, torch::kCPU, torch::kFloat32, "EDM noise"); }),
              HasSubstr("a random draw on cpu was given a generator of cuda:0"));
  EXPECT_THAT(error_of([&] { sample_indices({0.5, 0.5}, 4, generator, torch::kCPU); }),
              HasSubstr("a random draw on cpu"));
  const auto idx = sample_indices({0.25, 0.75}, 4000, generator, cuda);
  EXPECT_TRUE(idx.is_cuda());
  EXPECT_NEAR(idx.to(torch::kFloat64).mean().item<double>(), 0.75, 0.05);
}

TEST(RandomDraws, ObjectiveAndSamplerSourcesDrawOnlyThroughTheHelpers) {
  // A raw at::/torch:: draw in these files would bypass the device check (once, a CUDA generator handed to a CPU
  // kernel stopped every CUDA run at step 1).
  const std::filesystem::path src = std::filesystem::path(ONESTEP_SOURCE_DIR) / "src";
  const std::regex raw_draw(R"((at|torch)::(randn|rand|randint|multinomial|randperm|bernoulli|normal)\()");
  int checked = 0;
  for (const char* dir : {"objectives", "schedules", "samplers", "trainer"}) {
    for (const auto& entry : std::filesystem::directory_iterator(src / dir)) {
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      EXPECT_FALSE(std::regex_search(text.str(), raw_draw)) << entry.path() << " draws without core/random.h";
      ++checked;
    }
  }
  for (const char* file : {"metrics/evaluation.cpp", "cli/sample_command.cpp"}) {
    std::ifstream in(src / file);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_FALSE(std::regex_search(text.str(), raw_draw)) << file << " draws without core/random.h";
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

TEST(Tf32, OffByDefaultAsInTheReferenceTrainingLoopsAndAllowedByTheKey) {
  EXPECT_FALSE(TrainConfig{}.tf32);
  EXPECT_TRUE(TrainConfig::from_config(Json{{"train", {{"tf32", true}}}}).tf32);
  EXPECT_FALSE(TrainConfig::from_config(Json::object()).tf32);
  // What cuBLAS and cuDNN ask (ATen's allowTF32CuBLAS / allowTF32CuDNN, which refuse a mixed state).
  set_cuda_tf32(true);
  EXPECT_TRUE(at::globalContext().allowTF32CuBLAS());
  EXPECT_TRUE(at::globalContext().allowTF32CuDNN());
  EXPECT_EQ(at::globalContext().float32Precision(at::Float32Backend::CUDA, at::Float32Op::CONV),
            at::Float32Precision::TF32);
  set_cuda_tf32(false);
  EXPECT_FALSE(at::globalContext().allowTF32CuBLAS());
  EXPECT_FALSE(at::globalContext().allowTF32CuDNN());
  EXPECT_EQ(at::globalContext().float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL),
            at::Float32Precision::IEEE);
}

// mix_seed(a, b) is the splitmix64 finalizer of a * 0x9E3779B97F4A7C15 + b + 0x632BE59BD9B4E019 (mod 2^64). With a = 1
// and b chosen to cancel the added constant, its argument is k * 0x9E3779B97F4A7C15, the k-th state of Vigna's
// splitmix64 generator seeded with 0, whose published first outputs are 0xE220A8397B1DCDAF and 0x6E789E6AA1B965F4.
// The other literals were computed once with Python integers masked to 64 bits (the same three multiply-xorshift
// rounds), not with this code.
TEST(MixSeed, IsTheSplitmix64FinalizerOfTheCombinedWords) {
  constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL, kOffset = 0x632BE59BD9B4E019ULL;
  EXPECT_EQ(mix_seed(1, 0 - kOffset), 0xE220A8397B1DCDAFULL);                // splitmix64(seed 0), output 1
  EXPECT_EQ(mix_seed(1, kGolden - kOffset), 0x6E789E6AA1B965F4ULL);          // output 2
  EXPECT_EQ(mix_seed(0, 0), 0x6DB6CA64564DAEAAULL);                          // the finalizer(kOffset)
  EXPECT_EQ(mix_seed(7 ^ 0xBA7C4ULL, 1), 0x340BDBC260A32207ULL);             // batch 1 of seed 7 (sampling_job)
  EXPECT_EQ(mix_seed(~uint64_t{0}, 2), 0xF06CAAEF80CC5827ULL);               // wraps mod 2^64
  EXPECT_NE(mix_seed(1, 2), mix_seed(2, 1));                                 // not symmetric in its words
}
