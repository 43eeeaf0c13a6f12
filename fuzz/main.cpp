// The plain mutation loop: runs every seed file of a directory, then `--runs` mutations of them (bit flips,
// interesting integers, digit runs replaced by huge or negative numbers, cuts, duplications, splices), each under
// a time limit and an address-space limit. Deterministic for a given --seed. Exit status 0 when every case either
// succeeded or threw onestep::Error; 1 at the first other outcome, whose input is written to --crash-dir.
//   onestep_fuzz TARGET SEED_DIR [--runs N] [--seed S] [--crash-dir DIR] [--memory-mb M] [--case-seconds T]
#include "core/error.h"
#include "fuzz/targets.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

using onestep::fuzz::Target;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

class Mutator {
 public:
  Mutator(uint64_t seed, const std::vector<std::string>& seeds) : rng_(seed), seeds_(seeds) {}

  std::string mutate(std::string data) {
    const int count = 1 + static_cast<int>(below(4));
    for (int i = 0; i < count; ++i) mutate_once(data);
    return data;
  }
  size_t below(size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }

 private:
  void mutate_once(std::string& d) {
    static const char* kNumbers[] = {"0", "-1", "-4", "1000000000", "4294967296", "18446744073709551616",
                                     "99999999999999999999999", "1e308", "nan", "2147483648"};
    static const uint64_t kIntegers[] = {0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                         0x100000000ull, 0x7FFFFFFFFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull};
    switch (below(9)) {
      case 0:  // flip a bit
        if (!d.empty()) d[below(d.size())] ^= static_cast<char>(1 << below(8));
        break;
      case 1:  // an interesting byte
        if (!d.empty()) d[below(d.size())] = static_cast<char>(kIntegers[below(5)]);
        break;
      case 2: {  // an interesting little- or big-endian integer of 4 or 8 bytes
        const size_t width = below(2) ? 8 : 4;
        if (d.size() < width) break;
        const size_t at = below(d.size() - width + 1);
        const uint64_t v = kIntegers[below(std::size(kIntegers))];
        const bool big = below(2);
        for (size_t i = 0; i < width; ++i)
          d[at + i] = static_cast<char>(v >> (8 * (big ? width - 1 - i : i)));
        break;
      }
      case 3: {  // replace a run of digits (headers, JSON, TOML) by a number that tests the limits
        std::vector<size_t> digits;
        for (size_t i = 0; i < d.size(); ++i)
          if (d[i] >= '0' && d[i] <= '9' && (i == 0 || d[i - 1] < '0' || d[i - 1] > '9')) digits.push_back(i);
        if (digits.empty()) break;
        const size_t at = digits[below(digits.size())];
        size_t end = at;
        while (end < d.size() && d[end] >= '0' && d[end] <= '9') ++end;
        d.replace(at, end - at, kNumbers[below(std::size(kNumbers))]);
        break;
      }
      case 4:  // cut the tail
        if (!d.empty()) d.resize(below(d.size()));
        break;
      case 5: {  // delete a range
        if (d.empty()) break;
        const size_t at = below(d.size());
        d.erase(at, 1 + below(std::min<size_t>(64, d.size() - at)));
        break;
      }
      case 6: {  // duplicate a range
        if (d.empty()) break;
        const size_t at = below(d.size());
        const std::string piece = d.substr(at, 1 + below(64));
        d.insert(below(d.size() + 1), piece);
        break;
      }
      case 7: {  // random bytes
        const size_t n = 1 + below(16);
        std::string bytes(n, '\0');
        for (auto& c : bytes) c = static_cast<char>(below(256));
        d.insert(below(d.size() + 1), bytes);
        break;
      }
      default: {  // splice with another seed
        const std::string& other = seeds_[below(seeds_.size())];
        if (d.empty() || other.empty()) break;
        d = d.substr(0, below(d.size())) + other.substr(below(other.size()));
        break;
      }
    }
  }

  std::mt19937_64 rng_;
  const std::vector<std::string>& seeds_;
};

int usage() {
  std::fprintf(stderr, "usage: onestep_fuzz TARGET SEED_DIR [--runs N] [--seed S] [--crash-dir DIR] [--memory-mb M] "
                       "[--case-seconds T]\ntargets:");
  for (const auto& t : onestep::fuzz::targets()) std::fprintf(stderr, " %s", t.name.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const Target* target = onestep::fuzz::find_target(argv[1]);
  if (!target) return usage();
  const std::filesystem::path seed_dir = argv[2];
  long runs = 300, memory_mb = 8192, case_seconds = 20;
  uint64_t seed = 1;
  std::filesystem::path crash_dir = std::filesystem::temp_directory_path();
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--runs") runs = std::stol(argv[i + 1]);
    else if (flag == "--seed") seed = std::stoull(argv[i + 1]);
    else if (flag == "--crash-dir") crash_dir = argv[i + 1];
    else if (flag == "--memory-mb") memory_mb = std::stol(argv[i + 1]);
    else if (flag == "--case-seconds") case_seconds = std::stol(argv[i + 1]);
    else return usage();
  }
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(seed_dir, ec))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "onestep_fuzz: no seed files in %s\n", seed_dir.c_str());
    return 2;
  }
  std::vector<std::string> seeds;
  for (const auto& f : files) seeds.push_back(read_file(f));

  // A file may not make the reader allocate without bound: an allocation beyond the limit is a finding.
  const rlimit limit{static_cast<rlim_t>(memory_mb) << 20, static_cast<rlim_t>(memory_mb) << 20};
  setrlimit(RLIMIT_AS, &limit);

  Mutator mutator(seed, seeds);
  long rejected = 0;
  for (long i = -static_cast<long>(seeds.size()); i < runs; ++i) {
    const bool is_seed = i < 0;
    const std::string input = is_seed ? seeds[static_cast<size_t>(i + static_cast<long>(seeds.size()))]
                                      : mutator.mutate(seeds[mutator.below(seeds.size())]);
    std::string finding;
    alarm(static_cast<unsigned>(case_seconds));  // a hang ends the process (SIGALRM): also a finding
    try {
      target->run(input);
    } catch (const onestep::Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      finding = e.what();
    } catch (...) {
      finding = "an exception that is not a std::exception";
    }
    alarm(0);
    if (!finding.empty()) {
      const auto path = crash_dir / ("onestep_fuzz_" + target->name + "_case" + std::to_string(i) + ".bin");
      std::ofstream(path, std::ios::binary).write(input.data(), static_cast<std::streamsize>(input.size()));
      std::fprintf(stderr, "onestep_fuzz %s: case %ld (input saved to %s) threw a non-onestep error: %s\n",
                   target->name.c_str(), i, path.c_str(), finding.substr(0, 2000).c_str());
      return 1;
    }
  }
  std::printf("onestep_fuzz %s: %zu seeds + %ld mutations, %ld rejected with onestep::Error, no finding\n",
              target->name.c_str(), seeds.size(), runs, rejected);
  std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("onestep_fuzz_" + std::to_string(::getpid())),
                              ec);
  return 0;
}
