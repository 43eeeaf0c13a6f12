#include "distributed/launch_env.h"

#include "error_message.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace onestep {
namespace {

using ::testing::HasSubstr;
using onestep::testing::error_of;

LaunchEnv parse(const std::map<std::string, std::string>& vars) {
  return parse_launch_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnv, NoVariablesMeansOneProcess) {
  const LaunchEnv env = parse({});
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.source, "single");
}

TEST(LaunchEnv, TorchrunVariables) {
  const LaunchEnv env = parse({{"RANK", "5"},
                               {"WORLD_SIZE", "8"},
                               {"LOCAL_RANK", "1"},
                               {"MASTER_ADDR", "node7"},
                               {"MASTER_PORT", "29500"},
                               {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.master_addr, "node7");
  EXPECT_EQ(env.master_port, 29500);
  EXPECT_TRUE(env.use_agent_store);
  EXPECT_TRUE(env.distributed());
  EXPECT_EQ(env.source, "env");
}

TEST(LaunchEnv, WorldSizeOneNeedsNoRendezvous) {
  const LaunchEnv env = parse({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.local_rank, 0);
}

TEST(LaunchEnv, TorchrunVariablesTakePrecedenceOverSlurm) {
  const LaunchEnv env = parse({{"RANK", "1"},
                               {"WORLD_SIZE", "2"},
                               {"LOCAL_RANK", "1"},
                               {"MASTER_ADDR", "127.0.0.1"},
                               {"MASTER_PORT", "1234"},
                               {"SLURM_PROCID", "0"},
                               {"SLURM_NTASKS", "4"}});
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.world_size, 2);
  EXPECT_FALSE(env.use_agent_store);
}

TEST(LaunchEnv, SlurmVariablesWithHostFromTheNodeList) {
  const LaunchEnv env = parse({{"SLURM_PROCID", "6"},
                               {"SLURM_NTASKS", "8"},
                               {"SLURM_STEP_NUM_TASKS", "8"},
                               {"SLURM_LOCALID", "2"},
                               {"SLURM_JOB_NODELIST", "gpu-[003-004],gpu-010"},
                               {"SLURM_JOB_ID", "4711"}});
  EXPECT_EQ(env.source, "slurm");
  EXPECT_EQ(env.rank, 6);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 2);
  EXPECT_EQ(env.master_addr, "gpu-003");
  EXPECT_EQ(env.master_port, 14711);
}

TEST(LaunchEnv, SlurmMasterVariablesOverrideTheNodeList) {
  const LaunchEnv env = parse({{"SLURM_PROCID", "0"},
                               {"SLURM_NTASKS", "2"},
                               {"SLURM_STEP_NUM_TASKS", "2"},
                               {"SLURM_LOCALID", "0"},
                               {"SLURM_JOB_NODELIST", "a[1-2]"},
                               {"MASTER_ADDR", "10.0.0.1"},
                               {"MASTER_PORT", "2222"}});
  EXPECT_EQ(env.master_addr, "10.0.0.1");
  EXPECT_EQ(env.master_port, 2222);
}

TEST(LaunchEnv, SingleTaskSlurmAllocationIsOneProcess) {
  EXPECT_FALSE(parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).distributed());
  EXPECT_FALSE(parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_NUM_TASKS", "1"}}).distributed());
}

// sbatch's batch script has SLURM_PROCID=0 and the allocation's SLURM_NTASKS but is no job step: a plain
// `onestep train` there is one process (with a note), not rank 0 of N waiting for peers that never come.
TEST(LaunchEnv, SlurmBatchScriptWithoutAStepIsOneProcess) {
  const LaunchEnv env = parse({{"SLURM_PROCID", "0"},
                               {"SLURM_NTASKS", "4"},
                               {"SLURM_LOCALID", "0"},
                               {"SLURM_JOB_NODELIST", "gpu-[1-2]"},
                               {"SLURM_JOB_ID", "17"}});
  EXPECT_FALSE(env.distributed());
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.source, "single");
  EXPECT_THAT(env.note, HasSubstr("SLURM_NTASKS=4 but no job step"));
  EXPECT_TRUE(parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}}).note.empty());
}

// srun -n 2 inside an allocation of 4 tasks: the step's tasks are the ranks.
TEST(LaunchEnv, SlurmStepTasksAreTheWorld) {
  const LaunchEnv env = parse({{"SLURM_PROCID", "1"},
                               {"SLURM_NTASKS", "4"},
                               {"SLURM_STEP_NUM_TASKS", "2"},
                               {"SLURM_LOCALID", "7"},
                               {"SLURM_JOB_NODELIST", "gpu-[1-2]"},
                               {"SLURM_JOB_ID", "17"}});
  EXPECT_EQ(env.world_size, 2);
  EXPECT_EQ(env.rank, 1);
  EXPECT_EQ(env.local_rank, 7);
}

TEST(LaunchEnv, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("gpu[007-012]"), "gpu007");
  EXPECT_EQ(first_slurm_host("gpu[9,11-12],cpu1"), "gpu9");
  EXPECT_EQ(first_slurm_host("rack[2-3]-n[01-04]"), "rack2-n01");
  EXPECT_THAT(error_of([] { first_slurm_host("gpu[1-2"); }), HasSubstr("no ']'"));
  EXPECT_THAT(error_of([] { first_slurm_host(""); }), HasSubstr("empty SLURM node list"));
}

TEST(LaunchEnv, DefaultSlurmPortIsFixedPerJob) {
  EXPECT_EQ(default_slurm_port("123"), 10123);
  EXPECT_EQ(default_slurm_port("98765"), 18765);
  EXPECT_EQ(default_slurm_port("98765_3"), 17653);  // array jobs: every digit counts, the last four kept
}

TEST(LaunchEnv, BadValuesNameTheVariable) {
  const std::map<std::string, std::string> ok{
      {"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& key, const std::string& value) {
    auto vars = ok;
    if (value.empty()) vars.erase(key);
    else vars[key] = value;
    return error_of([&] { parse(vars); });
  };
  EXPECT_EQ(error_of([&] { parse(ok); }), "(no error)");
  EXPECT_THAT(with("WORLD_SIZE", "two"), HasSubstr("WORLD_SIZE='two' is not an integer"));
  EXPECT_THAT(with("WORLD_SIZE", "0"), HasSubstr("WORLD_SIZE='0'"));
  EXPECT_THAT(with("RANK", "2"), HasSubstr("RANK=2 is not below WORLD_SIZE=2"));
  EXPECT_THAT(with("RANK", "-1"), HasSubstr("RANK='-1'"));
  EXPECT_THAT(with("RANK", ""), HasSubstr("RANK is missing"));
  EXPECT_THAT(with("LOCAL_RANK", ""), HasSubstr("LOCAL_RANK is not set"));
  EXPECT_THAT(with("MASTER_ADDR", ""), HasSubstr("MASTER_ADDR is not set"));
  EXPECT_THAT(with("MASTER_PORT", "70000"), HasSubstr("MASTER_PORT='70000' is not a TCP port"));
  EXPECT_THAT(with("MASTER_PORT", "29500x"), HasSubstr("MASTER_PORT='29500x'"));
  EXPECT_THAT(error_of([] {
                parse({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEP_NUM_TASKS", "2"},
                       {"SLURM_LOCALID", "0"}});
              }),
              HasSubstr("SLURM_JOB_NODELIST"));
  EXPECT_THAT(error_of([] {
                parse({{"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_NUM_TASKS", "2"},
                       {"SLURM_LOCALID", "0"}, {"SLURM_JOB_ID", "1"}, {"SLURM_JOB_NODELIST", "a"}});
              }),
              HasSubstr("SLURM_PROCID=2 is not below SLURM_STEP_NUM_TASKS=2"));
}

}  // namespace
}  // namespace onestep
