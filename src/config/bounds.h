#pragma once
// One table of the ranges of every number a configuration (a preset, --set, a run's config.toml or a model file's
// metadata) can set: threads, layers, widths, channels, batch sizes, sample counts, step counts, seeds. SectionReader
// checks each value it reads against its row, so a value past a bound fails where the config is read, naming the
// key, before anything allocates or starts a thread. The upper bounds are far above any real use; they exist so that
// a typo (99999999999) is an error, not an out-of-memory, a wrapped int or a silent hang.
#include <cstdint>
#include <string>
#include <vector>

namespace onestep {

struct ConfigBound {
  const char* key;  // "section.key"
  double min;       // -infinity where the reading component checks its own lower bound (with its own wording)
  double max;
  const char* what;  // what the number counts, for the message
};

const std::vector<ConfigBound>& config_bounds();
// The row of "section.key", or nullptr.
const ConfigBound* find_config_bound(const std::string& key);
// Throws an onestep::Error naming `key`, its value and its range when `value` is outside the row of `key`.
void check_config_bound(const std::string& key, double value);
void check_config_bound(const std::string& key, int64_t value);

}  // namespace onestep
