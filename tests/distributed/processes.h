#pragma once
// Child processes for the data-parallel tests: each rank is a real process (fork + exec right away, so the
// test's own threads never run in a child), output to a file, with a deadline on waiting.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace onestep::testing {

struct Child {
  pid_t pid = -1;
  std::filesystem::path log;
};

inline Child spawn(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                   const std::filesystem::path& log) {
  // Everything the child needs is built before fork: between fork and exec only async-signal-safe calls.
  std::vector<std::string> owned = args;
  std::vector<char*> argv;
  for (auto& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (!env.count(entry.substr(0, entry.find('=')))) environment.push_back(entry);
  }
  for (const auto& [key, value] : env) environment.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& e : environment) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(owned[0].c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  return {pid, log};
}

// The exit status (128 + signal when killed), or -1 when `deadline` passed (the child is then killed).
inline int wait_for(const Child& child, std::chrono::seconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (true) {
    int status = 0;
    const pid_t done = ::waitpid(child.pid, &status, WNOHANG);
    if (done == child.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() >= until) {
      ::kill(child.pid, SIGKILL);
      ::waitpid(child.pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

// The launch environment of rank `rank` of `world` on this machine.
inline std::map<std::string, std::string> rank_env(int rank, int world, int port) {
  return {{"RANK", std::to_string(rank)},      {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)}, {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", std::to_string(port)}, {"OMP_NUM_THREADS", "1"}};
}

// Runs the ranks of one job (world 1: no launch variables) and returns their exit statuses.
inline std::vector<int> run_job(const std::vector<std::string>& args, int world, const std::filesystem::path& logs) {
  const int port = free_port();
  std::vector<Child> children;
  for (int rank = 0; rank < world; ++rank) {
    auto env = world > 1 ? rank_env(rank, world, port) : std::map<std::string, std::string>{{"OMP_NUM_THREADS", "1"}};
    children.push_back(spawn(args, env, logs / ("rank" + std::to_string(rank) + ".log")));
  }
  std::vector<int> statuses;
  for (const Child& c : children) statuses.push_back(wait_for(c, std::chrono::seconds(60)));
  return statuses;
}

inline std::string logs_of(const std::filesystem::path& dir, int world) {
  std::string all;
  for (int rank = 0; rank < world; ++rank)
    all += "--- rank " + std::to_string(rank) + "\n" + read_text(dir / ("rank" + std::to_string(rank) + ".log"));
  return all;
}

}  // namespace onestep::testing
