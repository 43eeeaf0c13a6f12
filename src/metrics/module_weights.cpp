#include "metrics/module_weights.h"

#include "core/error.h"

#include <set>

namespace onestep {

void copy_named_tensors(torch::nn::Module& module, const SafetensorsContent& content, const std::string& source,
                        const std::function<bool(const std::string&)>& ignored) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  const auto copy = [&](const std::string& name, torch::Tensor& target) {
    const auto* tensor = content.find(name);
    require(tensor != nullptr, source, ": missing tensor '", name, "'");
    require(tensor->sizes() == target.sizes(), source, ": tensor '", name, "' has shape ", tensor->sizes(),
            ", expected ", target.sizes());
    target.copy_(*tensor);
    used.insert(name);
  };
  for (auto& item : module.named_parameters()) copy(item.key(), item.value());
  for (auto& item : module.named_buffers())
    if (!item.key().ends_with("num_batches_tracked")) copy(item.key(), item.value());
  for (const auto& entry : content.tensors) {
    const auto& name = entry.first;
    if (used.count(name) || name.ends_with("num_batches_tracked") || (ignored && ignored(name))) continue;
    fail(source, ": unexpected tensor '", name, "'");
  }
}

}  // namespace onestep
