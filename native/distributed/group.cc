#include "distributed/group.h"

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>

#include <cstdlib>
#include <sstream>

#include "distributed/c10d_compat.h"
#include "distributed/data_parallel.h"
#include "models/model.h"

namespace torch_attn::distributed {

namespace {

// DDP's broadcast bucket: 250 MiB.
constexpr size_t kBroadcastBucketBytes = size_t{250} << 20;

std::string Where(const GroupOptions& o) {
  return "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size);
}

c10d::ReduceOp ToC10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:  // Gloo has no AVG: a sum, then divided
      return c10d::ReduceOp::SUM;
    case ReduceOp::kMax:
      return c10d::ReduceOp::MAX;
    case ReduceOp::kMin:
      return c10d::ReduceOp::MIN;
    case ReduceOp::kProduct:
      return c10d::ReduceOp::PRODUCT;
  }
  return c10d::ReduceOp::SUM;
}

}  // namespace

// NCCL where this LibTorch has it (a CUDA build with NCCL, 2.x; see c10d_compat.h).
std::vector<std::string> AvailableBackends() {
  if (TORCH_ATTN_WITH_NCCL) return {"gloo", "nccl"};
  return {"gloo"};
}

ReduceOp ParseReduceOp(const std::string& name) {
  if (name == "sum") return ReduceOp::kSum;
  if (name == "avg") return ReduceOp::kAvg;
  if (name == "max") return ReduceOp::kMax;
  if (name == "min") return ReduceOp::kMin;
  if (name == "product") return ReduceOp::kProduct;
  throw RangeError("reduce op must be one of 'sum', 'avg', 'max', 'min', 'product', got '" + name + "'");
}

std::shared_ptr<Group> Group::Create(const GroupOptions& o) {
  if (o.backend != "gloo" && o.backend != "nccl") throw RangeError("backend must be 'gloo' or 'nccl', got '" + o.backend + "'");
  if (o.backend == "nccl" && !TORCH_ATTN_WITH_NCCL) {
    throw RangeError("backend 'nccl' is not in this build: it needs a CUDA LibTorch 2.x with NCCL (and nccl.h when building); use 'gloo'");
  }
  if (o.backend == "nccl" && (!at::hasCUDA() || at::getNumGPUs() == 0)) {
    throw RangeError("backend 'nccl' needs a CUDA device, and this process sees none; use 'gloo' on CPUs");
  }
  if (o.world_size < 1) throw RangeError("WORLD_SIZE must be at least 1, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size) {
    throw RangeError("RANK must be from 0 to WORLD_SIZE - 1 (" + std::to_string(o.world_size - 1) + "), got " + std::to_string(o.rank));
  }
  if (o.master_port < 1 || o.master_port > 65535) throw RangeError("MASTER_PORT must be from 1 to 65535, got " + std::to_string(o.master_port));
  std::shared_ptr<Group> group(new Group(o));
  try {
    c10d::TCPStoreOptions store;
    store.port = static_cast<uint16_t>(o.master_port);
    store.isServer = o.rank == 0;
    store.numWorkers = static_cast<size_t>(o.world_size);
    store.waitWorkers = true;
    store.timeout = o.timeout;
    compat::UseClassicStore(store, 0);
    group->store_ = c10::make_intrusive<c10d::TCPStore>(o.master_addr, store);
  } catch (const std::exception& e) {
    throw DistributedError(Where(o) + ": cannot meet the other ranks at " + o.master_addr + ":" + std::to_string(o.master_port) +
                           (o.rank == 0 ? " (rank 0 serves the rendezvous there: is the port in use?)" : "") + ": " +
                           ShortTorchMessage(e.what()));
  }
  try {
    auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
    // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch; else the host name's address.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    options->devices.push_back(ifname != nullptr && *ifname != '\0' ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                                                    : c10d::ProcessGroupGloo::createDefaultDevice());
    if (o.backend == "nccl") {
      group->group_ = compat::MakeNcclGroup(group->store_, static_cast<int>(o.rank), static_cast<int>(o.world_size), options, o.timeout);
    } else {
      group->group_ = compat::MakeGlooGroup(group->store_, static_cast<int>(o.rank), static_cast<int>(o.world_size), options);
    }
  } catch (const std::exception& e) {
    throw DistributedError(Where(o) + ": cannot connect the " + (o.backend == "nccl" ? "NCCL" : "Gloo") + " process group: " + ShortTorchMessage(e.what()));
  }
  return group;
}

Group::Group(GroupOptions options) : options_(std::move(options)) {}
Group::~Group() = default;

bool Group::destroyed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !group_;
}

c10::intrusive_ptr<c10d::ProcessGroup> Group::backend() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!group_) throw DistributedError(Where(options_) + ": the process group was destroyed");
  return group_;
}

std::string Group::Hint() const {
  std::ostringstream timeout;
  timeout << options_.timeout.count() / 1000.0;
  return " (another rank stopped, or did not get here within the timeout of " + timeout.str() + " s)";
}

void Group::Guard(const std::string& what, const std::function<void()>& op) {
  try {
    op();
  } catch (const DistributedError&) {
    throw;
  } catch (const c10::Error& e) {
    throw DistributedError(Where(options_) + ": " + what + " failed: " + ShortTorchMessage(e.what_without_backtrace()) + Hint());
  } catch (const std::runtime_error& e) {  // Gloo's own exceptions
    throw DistributedError(Where(options_) + ": " + what + " failed: " + ShortTorchMessage(e.what()) + Hint());
  }
}

void Group::Barrier() {
  auto pg = backend();
  Guard("barrier()", [&] { pg->barrier()->wait(); });
}

void Group::AllReduce(torch::Tensor& tensor, ReduceOp op, const std::string& what) {
  auto pg = backend();
  Guard(what, [&] {
    std::vector<torch::Tensor> tensors{tensor};
    c10d::AllreduceOptions opts;
    opts.reduceOp = ToC10d(op);
    pg->allreduce(tensors, opts)->wait();
    if (op == ReduceOp::kAvg) {
      torch::NoGradGuard no_grad;
      if (tensor.is_floating_point()) {
        tensor.div_(static_cast<double>(options_.world_size));
      } else {
        tensor.copy_(tensor.div(options_.world_size, "floor"));
      }
    }
  });
}

void Group::Broadcast(torch::Tensor& tensor, int64_t src) {
  if (src < 0 || src >= options_.world_size) {
    throw RangeError("broadcast() src must be a rank from 0 to " + std::to_string(options_.world_size - 1) + ", got " + std::to_string(src));
  }
  auto pg = backend();
  Guard("broadcast()", [&] {
    std::vector<torch::Tensor> tensors{tensor};
    c10d::BroadcastOptions opts;
    opts.rootRank = src;
    pg->broadcast(tensors, opts)->wait();
  });
}

std::vector<torch::Tensor> Group::AllGather(const torch::Tensor& tensor) {
  auto pg = backend();
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int64_t r = 0; r < options_.world_size; ++r) out[0].push_back(torch::empty_like(tensor));
  Guard("allGather()", [&] {
    std::vector<torch::Tensor> in{tensor.contiguous()};
    pg->allgather(out, in)->wait();
  });
  return out[0];
}

void Group::BroadcastCoalesced(const std::vector<torch::Tensor>& tensors, int64_t src, const std::string& what) {
  if (tensors.empty()) return;
  auto pg = backend();
  Guard(what, [&] {
    torch::NoGradGuard no_grad;
    c10d::broadcast_coalesced(pg, tensors, kBroadcastBucketBytes, static_cast<int>(src));
  });
}

void Group::Destroy() {
  std::lock_guard<std::mutex> lock(mutex_);
  replicas_.clear();
  group_.reset();
  store_.reset();
}

std::shared_ptr<DataParallel> Group::ReplicaOf(const std::shared_ptr<models::ModelImpl>& model) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!group_) throw DistributedError(Where(options_) + ": the process group was destroyed");
    for (auto it = replicas_.begin(); it != replicas_.end();) it = it->second.model.expired() ? replicas_.erase(it) : std::next(it);
    auto it = replicas_.find(model.get());
    if (it != replicas_.end()) return it->second.state;
  }
  auto state = std::make_shared<DataParallel>(shared_from_this(), *model);  // broadcasts: not under the lock
  std::lock_guard<std::mutex> lock(mutex_);
  replicas_[model.get()] = Replica{model, state};
  return state;
}

}  // namespace torch_attn::distributed
