#include "distributed/communicator.h"
#include "distributed/backends.h"

#include "core/device.h"
#include "core/error.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

// ProcessGroupGloo.hpp declares its class only under USE_C10D_GLOO and needs gloo's headers, which the torch
// wheel does not ship: Debian's libgloo-dev provides them (the class's layout is torch's own header; gloo types
// appear in it only behind pointers). Without them, Gloo is unavailable and the error says so.
#if __has_include(<gloo/context.h>)
#define USE_C10D_GLOO 1
#define ONESTEP_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
// ProcessGroupNCCL.hpp likewise declares its class only under USE_C10D_NCCL and needs nccl.h (CUDA's, or the
// nvidia-nccl wheel's); its code is in libtorch_cuda, which only a CUDA build links (ONESTEP_WITH_CUDA). A CPU
// build, CI's, compiles none of it.
#if defined(ONESTEP_WITH_CUDA) && __has_include(<nccl.h>)
#define USE_C10D_NCCL 1
#define ONESTEP_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

namespace onestep {

bool gloo_available() {
#ifdef ONESTEP_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

bool nccl_available() {
#ifdef ONESTEP_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

struct Communicator::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::vector<c10::intrusive_ptr<c10d::Work>> pending;
};

namespace {

std::string first_line(const std::string& text) {
  const auto nl = text.find('\n');
  return nl == std::string::npos ? text : text.substr(0, nl);
}

std::string message_of(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return first_line(c10->what_without_backtrace());
  return first_line(e.what());
}

}  // namespace

Communicator::Communicator(LaunchEnv env, std::unique_ptr<Impl> impl, std::string backend_name, c10::Device device,
                           std::chrono::seconds timeout)
    : env_(std::move(env)),
      impl_(std::move(impl)),
      backend_name_(std::move(backend_name)),
      device_(device),
      timeout_(timeout) {}

Communicator::~Communicator() = default;

std::shared_ptr<Communicator> Communicator::create(const LaunchEnv& env, const c10::Device& device,
                                                   std::chrono::seconds timeout, const std::string& backend) {
  // World size 1 makes a group of one process: launches of one process never create it (they train exactly as
  // without a launcher), but onestep_train_bench times the distributed path with it.
  require(env.world_size >= 1 && env.rank >= 0 && env.rank < env.world_size, "Communicator::create: rank ", env.rank,
          " of ", env.world_size);
  require(timeout.count() > 0, "distributed timeout must be > 0 s");
  require(backend == "auto" || backend == "nccl" || backend == "gloo", "--dist-backend must be auto, nccl or gloo, "
          "got '", backend, "'");
  // Decided before the rendezvous, so that a rank that cannot run the backend says so at once.
  const bool use_nccl = backend == "nccl" || (backend == "auto" && device.is_cuda() && nccl_available());
  if (use_nccl) {
    require(nccl_available(), "--dist-backend nccl: this onestep was built without NCCL (it needs a LibTorch with "
            "CUDA and nccl.h at build time: docs/distributed.md); use --dist-backend gloo");
    require(device.is_cuda(), "--dist-backend nccl needs CUDA tensors, but this run is on ", device.str(),
            " (train.device / --device cuda, or --dist-backend gloo)");
  } else {
    require(gloo_available(), "this onestep was built without gloo's headers (Debian: libgloo-dev)",
            device.is_cuda() ? " and without NCCL" : "", ", so it has no distributed backend");
  }
  const std::string where = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  auto impl = std::make_unique<Impl>();
  const auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<std::uint16_t>(env.master_port);
    options.isServer = env.rank == 0 && !env.use_agent_store;
    options.numWorkers = env.use_agent_store ? std::nullopt : std::optional<std::size_t>(env.world_size);
    options.waitWorkers = !env.use_agent_store;
    options.timeout = timeout_ms;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
    // torchrun's agent store is shared with the agent: keep our keys apart, as init_process_group does.
    impl->store = c10::make_intrusive<c10d::PrefixStore>("onestep", tcp);
  } catch (const std::exception& e) {
    fail("distributed rendezvous failed on ", where, " at ", env.master_addr, ":", env.master_port, " (", env.source,
         " launch, timeout ", timeout.count(), " s): ", message_of(e));
  }
  const std::string backend_name = use_nccl ? "nccl" : "gloo";
  try {
    if (use_nccl) {
#ifdef ONESTEP_HAVE_NCCL
      // The rank's GPU is the current device before the communicator exists, as PyTorch advises
      // (torch.cuda.set_device before init_process_group): NCCL's eager init and barriers use it.
      use_device(device);
      // The collectives' timeout; NCCL's watchdog aborts the communicator (and, by PyTorch's default
      // TORCH_NCCL_ASYNC_ERROR_HANDLING, the process) when a collective exceeds it, so a dead peer never hangs.
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = timeout_ms;
      auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, options);
      nccl->setBoundDeviceId(device);  // one GPU per process: barriers and eager init use it
      impl->backend = nccl;
#endif
    } else {
#ifdef ONESTEP_HAVE_GLOO
      auto options = c10d::ProcessGroupGloo::Options::create(timeout_ms);
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      impl->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, options);
#endif
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    fail("distributed process group (", backend_name, ") failed on ", where, ": ", message_of(e));
  }
  return std::shared_ptr<Communicator>(new Communicator(env, std::move(impl), backend_name, device, timeout));
}

c10::Device Communicator::collective_device() const {
  return backend_name_ == "nccl" ? device_ : c10::Device(c10::kCPU);
}

void Communicator::failed(const char* what, const std::string& cause) {
  // Destroying a process group whose peer died can block in its destructor: abandon it instead.
  for (auto& work : impl_->pending) (void)work.release();
  impl_->pending.clear();
  (void)impl_->backend.release();
  (void)impl_->store.release();
  fail("distributed ", what, " failed on rank ", env_.rank, " of ", env_.world_size, ": ", cause,
       " (another rank has probably died or stalled: see its output; timeout ", timeout_.count(), " s)");
}

void Communicator::start_sum(const at::Tensor& tensor) {
  require(impl_->backend.defined(), "distributed all-reduce on a process group that has already failed");
  try {
    std::vector<at::Tensor> tensors{tensor};
    impl_->pending.push_back(impl_->backend->allreduce(tensors));
  } catch (const std::exception& e) {
    failed("all-reduce", message_of(e));
  }
}

void Communicator::wait_all(const char* what) {
  try {
    for (auto& work : impl_->pending) work->wait(std::chrono::duration_cast<std::chrono::milliseconds>(timeout_));
  } catch (const std::exception& e) {
    failed(what, message_of(e));
  }
  impl_->pending.clear();
}

void Communicator::sum(const at::Tensor& tensor, const char* what) {
  start_sum(tensor);
  wait_all(what);
}

void Communicator::broadcast(std::vector<at::Tensor>& tensors, const char* what) {
  require(impl_->backend.defined(), "distributed ", what, " on a process group that has already failed");
  try {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      impl_->pending.push_back(impl_->backend->broadcast(one));
    }
  } catch (const std::exception& e) {
    failed(what, message_of(e));
  }
  wait_all(what);
}

void Communicator::barrier(const char* what) {
  require(impl_->backend.defined(), "distributed ", what, " on a process group that has already failed");
  try {
    c10d::BarrierOptions options;
    if (device_.is_cuda() && backend_name_ == "nccl") options.device_ids = {device_.index()};
    impl_->pending.push_back(impl_->backend->barrier(options));
  } catch (const std::exception& e) {
    failed(what, message_of(e));
  }
  wait_all(what);
}

std::vector<at::Tensor> Communicator::gather_to_main(const at::Tensor& tensor, const char* what) {
  require(impl_->backend.defined(), "distributed ", what, " on a process group that has already failed");
  std::vector<std::vector<at::Tensor>> outputs;
  if (is_main()) {
    outputs.emplace_back();
    for (int r = 0; r < world_size(); ++r) outputs[0].push_back(at::empty_like(tensor));
  }
  std::vector<at::Tensor> inputs{tensor};
  try {
    c10d::GatherOptions options;
    options.rootRank = 0;
    impl_->pending.push_back(impl_->backend->gather(outputs, inputs, options));
  } catch (const std::exception& e) {
    failed(what, message_of(e));
  }
  wait_all(what);
  return is_main() ? outputs[0] : std::vector<at::Tensor>{};
}

}  // namespace onestep
