#pragma once
// Who this process is in a data-parallel job, read from the environment the usual launchers set:
// torchrun / `onestep launch` (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or SLURM's srun
// (SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, the first host of SLURM_JOB_NODELIST). No variable, or
// SLURM's batch script outside a job step: one process.
#include <functional>
#include <string>

namespace onestep {

struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;             // the index of this process on its machine (core/device.h: rank_device)
  std::string master_addr;        // the TCPStore rendezvous host (rank 0 serves it unless use_agent_store)
  int master_port = 0;
  bool use_agent_store = false;   // torchrun's agent already serves the store (TORCHELASTIC_USE_AGENT_STORE)
  std::string source = "single";  // "single", "env" (the RANK/WORLD_SIZE variables) or "slurm"
  std::string note;               // for the user: why launch variables that were set were not followed

  bool distributed() const { return world_size > 1; }
};

// Reads the environment through `get` (nullptr = unset). RANK/WORLD_SIZE take precedence over SLURM_*, as in
// PyTorch's env:// rendezvous. Malformed or inconsistent values fail with one line naming the variable.
LaunchEnv parse_launch_env(const std::function<const char*(const char*)>& get);
// The same from the process environment.
LaunchEnv launch_env_from_environment();

// The first host of a SLURM node list: "gpu-[003-005,9],cpu1" -> "gpu-003" (zero padding kept).
std::string first_slurm_host(const std::string& node_list);

// Port of SLURM runs without MASTER_PORT: fixed per job, so that every task of the job computes the same.
int default_slurm_port(const std::string& job_id);

}  // namespace onestep
