// Where LibTorch 1.13 and 2.x differ, in one place: the rest of the core is written once.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <variant>

namespace torch_attn::compat {

// Module options hold c10::variant up to 2.0 and std::variant from 2.1.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
namespace variants = std;
#else
namespace variants = c10;
#endif

// Optimizer::state() is keyed by the parameter's TensorImpl: as a string of its address in 1.x
// (what c10::guts::to_string, gone in 2.x, printed), as the pointer itself in 2.x. The map's
// own key type decides, so no version number is guessed.
using OptimizerState = std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using OptimizerStateKey = OptimizerState::key_type;

template <typename Key = OptimizerStateKey>
Key StateKey(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream s;
    s << p.unsafeGetTensorImpl();
    return s.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace torch_attn::compat
