// onestep launch --nproc N -- train ...: the data-parallel processes of one machine without Python (what
// `torchrun --standalone --nproc_per_node=N` does): N copies of this executable with RANK, WORLD_SIZE,
// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set; when one fails, the others get a grace period
// to report their own error, then are terminated.
// The launcher supervises: the workers form a process group of their own (a terminal's Ctrl-C reaches the launcher
// alone, which forwards SIGINT/SIGTERM to each worker once), and each worker asks the kernel for SIGKILL when the
// launcher dies (PR_SET_PDEATHSIG), so that a launcher killed with -9 leaves no rank training on behind it.
#include "cli/commands.h"
#include "core/error.h"

#include <CLI/CLI.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace onestep::cli {

namespace {

struct LaunchOptions {
  int nproc = 0;
  int master_port = 0;
  double grace = 15;
  std::vector<std::string> command;
};

// A port that was free a moment ago (bind to port 0), for the rendezvous of this machine's ranks.
int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  require(fd >= 0, "onestep launch: cannot open a socket to find a free port");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  require(ok, "onestep launch: cannot find a free port; pass --master-port");
  return ntohs(address.sin_port);
}

std::vector<pid_t> g_children;  // for the signal handler

void forward_signal(int signal) {
  for (pid_t pid : g_children)
    if (pid > 0) ::kill(pid, signal);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  ::strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// The environment of each rank: the launcher's own, less the variables launch sets, plus RANK, WORLD_SIZE and the
// rendezvous. Built before fork: between fork and exec only async-signal-safe calls.
std::vector<std::vector<std::string>> rank_environments(int nproc, int port) {
  const std::vector<std::string> set_by_launch{"RANK",        "LOCAL_RANK",  "WORLD_SIZE",
                                               "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                                               "TORCHELASTIC_USE_AGENT_STORE"};
  std::vector<std::string> inherited;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    const std::string key = entry.substr(0, entry.find('='));
    if (std::find(set_by_launch.begin(), set_by_launch.end(), key) == set_by_launch.end()) inherited.push_back(entry);
  }
  std::vector<std::vector<std::string>> environments;
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> environment = inherited;
    for (const std::string& entry :
         {"RANK=" + std::to_string(rank), "LOCAL_RANK=" + std::to_string(rank), "WORLD_SIZE=" + std::to_string(nproc),
          "LOCAL_WORLD_SIZE=" + std::to_string(nproc), std::string("MASTER_ADDR=127.0.0.1"),
          "MASTER_PORT=" + std::to_string(port)})
      environment.push_back(entry);
    environments.push_back(std::move(environment));
  }
  return environments;
}

// Forks and execs one worker per environment, all in one process group (rank 0's pid names it), each killed when
// the launcher dies; their pids go to g_children.
void start_workers(const std::string& executable, std::vector<std::string> argv_strings,
                   std::vector<std::vector<std::string>> environments) {
  std::vector<char*> argv;
  for (auto& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  g_children.assign(environments.size(), -1);
  const pid_t launcher = ::getpid();
  // Installed before the first fork: a signal that arrives while the workers start is forwarded, not lost.
  ::signal(SIGINT, forward_signal);
  ::signal(SIGTERM, forward_signal);
  for (size_t rank = 0; rank < environments.size(); ++rank) {
    std::vector<char*> envp;
    for (auto& e : environments[rank]) envp.push_back(e.data());
    envp.push_back(nullptr);
    const pid_t group = rank == 0 ? 0 : g_children.front();  // rank 0's pid names the workers' group
    const pid_t pid = ::fork();
    require(pid >= 0, "onestep launch: fork failed");
    if (pid == 0) {
      ::signal(SIGINT, SIG_DFL);  // the launcher's forwarding handler is not the worker's
      ::signal(SIGTERM, SIG_DFL);
      ::setpgid(0, group);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != launcher) ::_exit(128 + SIGKILL);  // the launcher died before the request took effect
      ::execve(executable.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    ::setpgid(pid, group == 0 ? pid : group);  // also here: whichever of the two runs first
    g_children[rank] = pid;
  }
}

// Waits for every worker. After the first failure the others get `grace` seconds to stop on their own, then
// SIGTERM, then 5 s later SIGKILL. Returns the first failure's exit code (0 when all succeeded).
int wait_for_workers(double grace) {
  using clock = std::chrono::steady_clock;
  int running = static_cast<int>(g_children.size()), first_failure = 0;
  std::optional<clock::time_point> stop_at;
  bool terminated = false;
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, stop_at ? WNOHANG : 0);
    if (pid > 0) {
      size_t rank = 0;
      while (rank < g_children.size() && g_children[rank] != pid) ++rank;
      if (rank == g_children.size()) continue;
      g_children[rank] = -1;
      --running;
      const int code = exit_code_of(status);
      if (code != 0 && first_failure == 0) {
        first_failure = code;
        std::fprintf(stderr, "onestep launch: rank %zu %s; the other ranks get %.0f s to stop on their own\n", rank,
                     describe(status).c_str(), grace);
        stop_at = clock::now() + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(grace));
      }
      continue;
    }
    if (stop_at && clock::now() >= *stop_at) {
      std::fprintf(stderr, "onestep launch: %s the %d remaining rank(s)\n", terminated ? "killing" : "terminating",
                   running);
      forward_signal(terminated ? SIGKILL : SIGTERM);
      stop_at = clock::now() + std::chrono::seconds(5);
      terminated = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return first_failure;
}

int run_launch(const LaunchOptions& options) {
  require(options.nproc >= 1, "onestep launch: --nproc must be >= 1");
  require(!options.command.empty(), "onestep launch: no command (onestep launch --nproc N -- train ...)");
  require(options.command.front() != "launch", "onestep launch: the command cannot be launch itself");
  require(options.master_port >= 0 && options.master_port <= 65535, "onestep launch: --master-port ",
          options.master_port, " is not a TCP port");
  const std::string executable = std::filesystem::read_symlink("/proc/self/exe").string();
  const int port = options.master_port > 0 ? options.master_port : free_local_port();
  std::vector<std::string> argv{executable};
  argv.insert(argv.end(), options.command.begin(), options.command.end());

  std::fprintf(stderr, "onestep launch: %d processes, rendezvous at 127.0.0.1:%d\n", options.nproc, port);
  std::fflush(stderr);
  start_workers(executable, std::move(argv), rank_environments(options.nproc, port));
  return wait_for_workers(options.grace);
}

}  // namespace

void register_launch_command(CLI::App& app) {
  auto options = std::make_shared<LaunchOptions>();
  auto* command = app.add_subcommand(
      "launch", "run N data-parallel processes of a onestep command on this machine (as torchrun --standalone)");
  command->add_option("--nproc,-n", options->nproc, "number of processes (one per GPU on a GPU machine)")
      ->required();
  command->add_option("--master-port", options->master_port, "rendezvous port (default: a free one)");
  command->add_option("--grace", options->grace,
                      "seconds the other ranks get to report their own error after one fails, before SIGTERM")
      ->capture_default_str();
  command->add_option("command", options->command, "the onestep command and its arguments, after --")->required();
  command->footer(
      "Examples:\n"
      "  onestep launch --nproc 2 -- train --config points-ict --run runs/points-ict-2p\n"
      "  onestep launch --nproc 8 -- train --config cifar10-ict --run runs/c10-ict   (8 GPUs)\n"
      "  onestep launch --nproc 8 -- sample --ckpt model.safetensors --n 50000 --device cuda --out s.npz\n"
      "  onestep launch --nproc 8 -- eval --ckpt model.safetensors --n 50000 --metric fid --ref c10.npz ...\n"
      "Multi-node: torchrun or srun start the processes; see docs/distributed.md.");
  command->callback([options] {
    const int code = run_launch(*options);
    if (code != 0) throw ExitCode{code};
  });
}

}  // namespace onestep::cli
