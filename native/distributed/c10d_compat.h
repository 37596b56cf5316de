// Where c10d differs between LibTorch 1.13 and 2.x. In 1.x a backend (ProcessGroupGloo) is a
// ProcessGroup; from 2.0 a ProcessGroup holds backends per device type.
#pragma once

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

namespace torch_attn::compat {

// TCPStore's libuv server (the default from 2.4) only where LibTorch was built with libuv, which
// Debian's is not ("use_libuv was requested but PyTorch was build without libuv support"); 1.13
// has no such option.
template <typename Options>
auto UseClassicStore(Options& o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <typename Options>
void UseClassicStore(Options&, long) {}

inline c10::intrusive_ptr<c10d::ProcessGroup> MakeGlooGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                            const c10::intrusive_ptr<c10d::ProcessGroupGloo::Options>& options) {
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
#if TORCH_VERSION_MAJOR >= 2
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
  group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
  return group;
#else
  return gloo;
#endif
}

}  // namespace torch_attn::compat
