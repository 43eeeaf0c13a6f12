#include "networks/network.h"

#include "core/error.h"
#include "networks/mlp.h"
#include "networks/song_unet.h"

namespace onestep {

int64_t NetworkImpl::forward_macs() const { fail("this network does not count its multiply-accumulates"); }

std::shared_ptr<NetworkImpl> build_network(const Json& root, Json* effective) {
  std::string arch = "songunet";
  if (root.is_object() && root.contains("model") && root["model"].is_object() && root["model"].contains("arch")) {
    require(root["model"]["arch"].is_string(), "config: model.arch must be a string (songunet | mlp)");
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
  fail("config: model.arch = '", arch, "' is not one of: songunet, mlp");
}

}  // namespace onestep
