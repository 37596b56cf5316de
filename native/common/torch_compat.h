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

#include <ATen/autocast_mode.h>

namespace torch_attn::compat {

// Autocast's thread-local switches: per device type from 2.4 on, one function per device in 1.x.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool AutocastEnabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline void SetAutocastEnabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
inline at::ScalarType AutocastDtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
inline void SetAutocastDtype(c10::DeviceType d, at::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
inline bool AutocastEnabled(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline void SetAutocastEnabled(c10::DeviceType d, bool on) {
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
inline at::ScalarType AutocastDtype(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
inline void SetAutocastDtype(c10::DeviceType d, at::ScalarType t) {
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(t);
  } else {
    at::autocast::set_autocast_cpu_dtype(t);
  }
}
#endif

}  // namespace torch_attn::compat
