#include "networks/network.h"

#include "core/error.h"
#include "networks/adm_unet.h"
#include "networks/edm2_unet.h"
#include "networks/mlp.h"
#include "networks/song_unet.h"

#include <charconv>

namespace onestep {

int64_t NetworkImpl::forward_macs() const { fail("this network does not count its multiply-accumulates"); }

std::shared_ptr<NetworkImpl> build_network(const Json& root, Json* effective) {
  std::string arch = "songunet";
  if (root.is_object() && root.contains("model") && root["model"].is_object() && root["model"].contains("arch")) {
    require(root["model"]["arch"].is_string(), "config: model.arch must be a string (songunet | mlp | edm2 | adm)");
    arch = root["model"]["arch"].get<std::string>();
  }
  if (arch == "songunet") {
    auto config = SongUNetConfig::from_config(root);
    if (effective) *effective = config.to_json();
    return std::make_shared<SongUNetImpl>(config);
  }
  if (arch == "mlp") {
    auto config = MlpConfig::from_config(root);
    if (effective) *effective = config.to_json();
    return std::make_shared<MlpImpl>(config);
  }
  if (arch == "edm2") {
    auto config = Edm2UNetConfig::from_config(root);
    if (effective) *effective = config.to_json();
    return std::make_shared<Edm2UNetImpl>(config);
  }
  if (arch == "adm") {
    auto config = AdmUNetConfig::from_config(root);
    if (effective) *effective = config.to_json();
    return std::make_shared<AdmUNetImpl>(config);
  }
  fail("config: model.arch = '", arch, "' is not one of: songunet, mlp, edm2, adm");
}

const std::vector<int64_t>* stored_shape(const StoredShapes& stored, const std::string& name) {
  auto it = stored.find(name);
  return it == stored.end() ? nullptr : &it->second;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::set<int64_t> stored_name_numbers(const StoredShapes& stored, const std::string& prefix, char terminator) {
  std::set<int64_t> numbers;
  for (const auto& [name, shape] : stored) {
    if (name.rfind(prefix, 0) != 0) continue;
    const char* begin = name.data() + prefix.size();
    int64_t number = 0;
    auto [end, error] = std::from_chars(begin, name.data() + name.size(), number);
    if (error == std::errc() && end != begin && *end == terminator) numbers.insert(number);
  }
  return numbers;
}

void check_network_against_stored(const Json& root, const StoredShapes& stored) {
  if (stored.empty()) return;  // no tensors under the weight set's prefix: the name-by-name check says so
  std::string arch = "songunet";
  if (root.is_object() && root.contains("model") && root["model"].is_object() && root["model"].contains("arch") &&
      root["model"]["arch"].is_string())
    arch = root["model"]["arch"].get<std::string>();
  if (arch == "songunet") SongUNetConfig::from_config(root).check_against(stored);
  else if (arch == "mlp") MlpConfig::from_config(root).check_against(stored);
  else if (arch == "edm2") Edm2UNetConfig::from_config(root).check_against(stored);
  else if (arch == "adm") AdmUNetConfig::from_config(root).check_against(stored);
  else build_network(root);  // an unknown arch: build_network names it
}

}  // namespace onestep
