// Where c10d differs between LibTorch 1.13 and 2.x. In 1.x a backend (ProcessGroupGloo) is a
// ProcessGroup; from 2.0 a ProcessGroup holds backends per device type.
#pragma once

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>

#include <chrono>
#include <stdexcept>

// NCCL: the build sets TORCH_ATTN_NCCL when LibTorch is a CUDA build with c10d's NCCL backend
// (USE_C10D_NCCL) and NCCL's header is there (libnccl-dev); ProcessGroupNCCL lives in
// libtorch_cuda. torch-attn wires it for LibTorch 2.x, whose ProcessGroup holds one backend per
// device type.
#if defined(TORCH_ATTN_NCCL) && TORCH_ATTN_NCCL && defined(USE_C10D_NCCL) && TORCH_VERSION_MAJOR >= 2
#define TORCH_ATTN_WITH_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define TORCH_ATTN_WITH_NCCL 0
#endif

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

// backend 'nccl': CUDA tensors through NCCL and CPU tensors (epoch metrics, evaluation counts)
// through Gloo, as PyTorch's "cpu:gloo,cuda:nccl"; each backend keys its rendezvous under its own
// prefix of the one store, as PyTorch does.
inline c10::intrusive_ptr<c10d::ProcessGroup> MakeNcclGroup(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                            const c10::intrusive_ptr<c10d::ProcessGroupGloo::Options>& gloo_options,
                                                            std::chrono::milliseconds timeout) {
#if TORCH_ATTN_WITH_NCCL
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("cpu/", store), rank, size, gloo_options);
  auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
  nccl_options->timeout = timeout;
  auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(c10::make_intrusive<c10d::PrefixStore>("cuda/", store), rank, size, nccl_options);
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, size);
  group->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
  group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
  group->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
  return group;
#else
  throw std::logic_error("MakeNcclGroup without NCCL");  // Group::Create checks first
#endif
}

}  // namespace torch_attn::compat
