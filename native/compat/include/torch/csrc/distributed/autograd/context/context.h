// Debian 12's libtorch-dev (LibTorch 1.13) ships c10d/reducer.hpp but not this header, which
// reducer.hpp includes for two names: the type of a pointer member (a context of distributed
// autograd, RPC's, which torch-attn never uses) and a callback type it checks against its own.
// CMakeLists.txt puts this folder on the include path only when LibTorch's own copy is missing;
// the Reducer's layout does not depend on the class (a shared_ptr and an atomic pointer to it).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

namespace torch::distributed::autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor&)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace torch::distributed::autograd
