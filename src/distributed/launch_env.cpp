#include "distributed/launch_env.h"

#include "core/error.h"

#include <cstdlib>
#include <string_view>

namespace onestep {

namespace {

// Whole-string decimal integer, or a one-line error naming the variable.
int parse_int(const char* name, const char* text, int min_value) {
  const std::string value = text;
  size_t used = 0;
  long parsed = 0;
  try {
    parsed = std::stol(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  require(!value.empty() && used == value.size() && parsed >= min_value && parsed <= 1 << 30, "environment: ",
          name, "='", value, "' is not an integer >= ", min_value);
  return static_cast<int>(parsed);
}

int parse_port(const char* name, const char* text) {
  const int port = parse_int(name, text, 1);
  require(port <= 65535, "environment: ", name, "='", text, "' is not a TCP port (1-65535)");
  return port;
}

}  // namespace

std::string first_slurm_host(const std::string& node_list) {
  // The first entry ends at the first comma outside brackets.
  std::string out;
  for (size_t i = 0; i < node_list.size(); ++i) {
    const char c = node_list[i];
    if (c == ',') break;
    if (c == '[') {
      // A range list: keep its first element, "003-005,9" -> "003".
      const size_t close = node_list.find(']', i);
      require(close != std::string::npos, "environment: malformed SLURM node list '", node_list, "' (no ']')");
      const std::string inner = node_list.substr(i + 1, close - i - 1);
      const size_t end = inner.find_first_of(",-");
      const std::string first = inner.substr(0, end);
      require(!first.empty(), "environment: malformed SLURM node list '", node_list, "' (empty range)");
      out += first;
      i = close;
      continue;
    }
    out += c;
  }
  require(!out.empty(), "environment: empty SLURM node list");
  return out;
}

int default_slurm_port(const std::string& job_id) {
  // As PyTorch Lightning: 10000 + the last four digits of the job id, so that jobs sharing a node differ.
  int tail = 0;
  for (char c : job_id)
    if (c >= '0' && c <= '9') tail = (tail * 10 + (c - '0')) % 10000;
  return 10000 + tail;
}

LaunchEnv parse_launch_env(const std::function<const char*(const char*)>& get) {
  auto has = [&](const char* name) {
    const char* v = get(name);
    return v != nullptr && *v != '\0';
  };
  LaunchEnv env;
  if (has("WORLD_SIZE") || has("RANK")) {
    require(has("WORLD_SIZE") && has("RANK"), "environment: RANK and WORLD_SIZE must be set together (",
            has("RANK") ? "WORLD_SIZE" : "RANK", " is missing)");
    env.source = "env";
    env.world_size = parse_int("WORLD_SIZE", get("WORLD_SIZE"), 1);
    env.rank = parse_int("RANK", get("RANK"), 0);
    require(env.rank < env.world_size, "environment: RANK=", env.rank, " is not below WORLD_SIZE=", env.world_size);
    if (env.world_size == 1) {
      env.local_rank = has("LOCAL_RANK") ? parse_int("LOCAL_RANK", get("LOCAL_RANK"), 0) : 0;
      return env;
    }
    require(has("LOCAL_RANK"), "environment: WORLD_SIZE=", env.world_size,
            " but LOCAL_RANK is not set (the process's index on its machine, which picks its GPU)");
    env.local_rank = parse_int("LOCAL_RANK", get("LOCAL_RANK"), 0);
    require(has("MASTER_ADDR"), "environment: WORLD_SIZE=", env.world_size, " but MASTER_ADDR is not set");
    require(has("MASTER_PORT"), "environment: WORLD_SIZE=", env.world_size, " but MASTER_PORT is not set");
    env.master_addr = get("MASTER_ADDR");
    env.master_port = parse_port("MASTER_PORT", get("MASTER_PORT"));
    const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
    env.use_agent_store = agent != nullptr && std::string_view(agent) == "True";
    return env;
  }
  if (has("SLURM_PROCID") && has("SLURM_NTASKS")) {
    // The ranks are the tasks of a job step (srun): SLURM_STEP_NUM_TASKS, which srun alone sets. The batch script
    // itself (sbatch without srun) also carries SLURM_PROCID=0 and the allocation's SLURM_NTASKS, but no other
    // task will ever join it: it runs as one process instead of waiting for N - 1 peers until the timeout.
    const int allocated = parse_int("SLURM_NTASKS", get("SLURM_NTASKS"), 1);
    if (!has("SLURM_STEP_NUM_TASKS")) {
      if (allocated > 1)
        env.note = "SLURM_NTASKS=" + std::to_string(allocated) + " but no job step (SLURM_STEP_NUM_TASKS unset: not "
                   "started by srun): running as one process; start the ranks with srun";
      return env;
    }
    env.world_size = parse_int("SLURM_STEP_NUM_TASKS", get("SLURM_STEP_NUM_TASKS"), 1);
    if (env.world_size == 1) return env;  // a one-task step: a plain single-process run
    env.source = "slurm";
    env.rank = parse_int("SLURM_PROCID", get("SLURM_PROCID"), 0);
    require(env.rank < env.world_size, "environment: SLURM_PROCID=", env.rank, " is not below SLURM_STEP_NUM_TASKS=",
            env.world_size);
    require(has("SLURM_LOCALID"), "environment: SLURM_STEP_NUM_TASKS=", env.world_size,
            " but SLURM_LOCALID is not set");
    env.local_rank = parse_int("SLURM_LOCALID", get("SLURM_LOCALID"), 0);
    if (has("MASTER_ADDR")) {
      env.master_addr = get("MASTER_ADDR");
    } else {
      const char* list = has("SLURM_JOB_NODELIST") ? get("SLURM_JOB_NODELIST") : get("SLURM_NODELIST");
      require(list != nullptr && *list != '\0',
              "environment: SLURM run without MASTER_ADDR, SLURM_JOB_NODELIST or SLURM_NODELIST");
      env.master_addr = first_slurm_host(list);
    }
    if (has("MASTER_PORT")) {
      env.master_port = parse_port("MASTER_PORT", get("MASTER_PORT"));
    } else {
      require(has("SLURM_JOB_ID"), "environment: SLURM run without MASTER_PORT or SLURM_JOB_ID");
      env.master_port = default_slurm_port(get("SLURM_JOB_ID"));
    }
    return env;
  }
  return env;
}

LaunchEnv launch_env_from_environment() {
  return parse_launch_env([](const char* name) { return static_cast<const char*>(std::getenv(name)); });
}

}  // namespace onestep
