#pragma once
// The fuzz drivers (fuzz/targets.cpp), run by fuzz/main.cpp (a plain mutation loop over seed files) or by
// libFuzzer (fuzz/libfuzzer.cpp). See fuzz/README.md.
#include <string>
#include <vector>

namespace onestep::fuzz {

struct Target {
  std::string name;
  void (*run)(const std::string& bytes);  // succeeds or throws onestep::Error
};

const std::vector<Target>& targets();
const Target* find_target(const std::string& name);

}  // namespace onestep::fuzz
