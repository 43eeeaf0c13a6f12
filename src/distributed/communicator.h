#pragma once
// The process group of a data-parallel run, on PyTorch's own c10d engine: a TCPStore rendezvous at
// MASTER_ADDR:MASTER_PORT and ProcessGroupNCCL when the tensors live on CUDA and LibTorch was built with NCCL
// (and nccl.h was found at build time), else ProcessGroupGloo (CPU tensors, and CUDA tensors through host
// copies). The c10d headers stay inside communicator.cpp.
//
// Failures (a rank that died, a timeout) become one onestep::Error naming the collective, the rank and the
// likely cause; the process group is then abandoned, not destroyed, so that exiting never waits on a dead peer.
#include "distributed/launch_env.h"

#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace onestep {

class Communicator {
 public:
  // Joins the job described by `env` (world size 1: a group of this process alone, for benchmarks). Every collective, and the rendezvous,
  // gives up after `timeout`. `device` is where the tensors live (this rank's GPU, core/device.h: rank_device, or the CPU). `backend`: "auto"
  // (nccl for a CUDA device when this build has it, else gloo), "nccl" (an error without it) or "gloo".
  static std::shared_ptr<Communicator> create(const LaunchEnv& env, const c10::Device& device,
                                              std::chrono::seconds timeout, const std::string& backend = "auto");
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }
  const std::string& backend_name() const { return backend_name_; }

  // Starts an in-place sum over the ranks of `tensor` (contiguous); wait_all() completes every started one.
  void start_sum(const at::Tensor& tensor);
  void wait_all(const char* what);
  // Blocking in-place sum.
  void sum(const at::Tensor& tensor, const char* what);
  // Rank 0's values into `tensors` on every rank.
  void broadcast(std::vector<at::Tensor>& tensors, const char* what);
  void barrier(const char* what);
  // Every rank's `tensor` (the same shape and dtype on every rank, on collective_device()) to rank 0: there the
  // world_size tensors in rank order, elsewhere an empty vector.
  std::vector<at::Tensor> gather_to_main(const at::Tensor& tensor, const char* what);
  // Where tensors handed to the collectives live best: the CUDA device for nccl, the CPU for gloo.
  c10::Device collective_device() const;

 private:
  struct Impl;
  Communicator(LaunchEnv env, std::unique_ptr<Impl> impl, std::string backend_name, c10::Device device,
               std::chrono::seconds timeout);
  [[noreturn]] void failed(const char* what, const std::string& cause);

  LaunchEnv env_;
  std::unique_ptr<Impl> impl_;
  std::string backend_name_;
  c10::Device device_;
  std::chrono::seconds timeout_;
};

}  // namespace onestep
