// A process group on LibTorch's own distributed engine (c10d): rendezvous through a TCPStore at
// MASTER_ADDR:MASTER_PORT (rank 0 serves it), Gloo for the collectives on CPU tensors (and NCCL
// for CUDA tensors in CUDA builds that have it, c10d_compat.h). What
// torch.distributed.init_process_group gives a PyTorch user, without N-API: the wrap layer
// (group_wrap.h) reads the options from JS, the fine-tuner and trainStep use it here.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/errors.h"

namespace c10d {
class ProcessGroup;
class Store;
}  // namespace c10d

namespace torch_attn::models {
class ModelImpl;
}

namespace torch_attn::distributed {

struct GroupOptions {
  std::string backend = "gloo";  // or "nccl" (CUDA builds with NCCL)
  std::string master_addr = "127.0.0.1";
  int64_t master_port = 29500;
  int64_t rank = 0;
  int64_t world_size = 1;
  int64_t local_rank = 0;
  std::chrono::milliseconds timeout{1800 * 1000};  // PyTorch's default: 30 minutes
};

// The backends this build of LibTorch has, as init() names them.
std::vector<std::string> AvailableBackends();

enum class ReduceOp { kSum, kAvg, kMax, kMin, kProduct };
ReduceOp ParseReduceOp(const std::string& name);  // RangeError naming the allowed ones

class DataParallel;

class Group : public std::enable_shared_from_this<Group> {
 public:
  // Rendezvous with the other ranks (blocks until all world_size have joined, or the timeout).
  static std::shared_ptr<Group> Create(const GroupOptions& options);
  ~Group();

  const GroupOptions& options() const { return options_; }
  int64_t rank() const { return options_.rank; }
  int64_t world_size() const { return options_.world_size; }
  bool destroyed() const;

  void Barrier();
  // In place, on every rank; `what` names the operation in errors.
  void AllReduce(torch::Tensor& tensor, ReduceOp op, const std::string& what = "allReduce()");
  void Broadcast(torch::Tensor& tensor, int64_t src);  // in place
  std::vector<torch::Tensor> AllGather(const torch::Tensor& tensor);
  // Tensors of any dtypes from `src` to every rank, packed into few messages (DDP's way);
  // `what` names the operation in errors.
  void BroadcastCoalesced(const std::vector<torch::Tensor>& tensors, int64_t src, const std::string& what);
  // Leaves the group: later collectives fail with a clear error. Idempotent.
  void Destroy();

  // The data-parallel state of `model` in this group (PyTorch: the DistributedDataParallel
  // wrapper), made on first use: the model's parameters and buffers are broadcast from rank 0.
  std::shared_ptr<DataParallel> ReplicaOf(const std::shared_ptr<models::ModelImpl>& model);

  c10::intrusive_ptr<c10d::ProcessGroup> backend();
  // Runs `op` and turns c10d's failures (a peer gone, a timeout) into a DistributedError that
  // says which rank saw it and what it was doing; on a destroyed group, refuses at once.
  void Guard(const std::string& what, const std::function<void()>& op);

 private:
  explicit Group(GroupOptions options);
  std::string Hint() const;

  GroupOptions options_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  mutable std::mutex mutex_;
  struct Replica {
    std::weak_ptr<models::ModelImpl> model;
    std::shared_ptr<DataParallel> state;
  };
  std::map<const models::ModelImpl*, Replica> replicas_;  // entries of models gone are pruned
};

}  // namespace torch_attn::distributed
