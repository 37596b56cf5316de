// Data-parallel training with PyTorch DistributedDataParallel's semantics, on its own engine:
// c10d's Reducer averages gradients bucket by bucket while backward still runs; parameters and
// buffers come from rank 0 when a model first trains in a group, buffers (BatchNorm statistics)
// again before every training forward (broadcast_buffers=True). Only trainable parameters are
// reduced: when freezing changes the trainable set (a new fine-tuning stage) the Reducer is
// rebuilt for the new set, as a PyTorch user re-wraps the model in DDP. A forward run inside a
// modules::SyncBatchNormScope of BatchNormSum() takes the statistics of the BatchNorms that train
// over the batches of all ranks (PyTorch's SyncBatchNorm).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "modules/batch_norm.h"

namespace c10d {
class Reducer;
}

namespace torch_attn::models {
class ModelImpl;
}

namespace torch_attn::distributed {

class Group;

class DataParallel {
 public:
  DataParallel(std::shared_ptr<Group> group, models::ModelImpl& model);
  ~DataParallel();

  // Around a training step's forward and backward, in this order, on one thread.
  void BeforeForward();
  void AfterForward();
  void Backward(const torch::Tensor& loss);

  Group& group() { return *group_; }
  // The sum over this group's ranks that synchronised BatchNorms use (it holds the group: the
  // backward's sums run after the forward's scope has closed).
  modules::SumOverRanks BatchNormSum() const;

 private:
  void BuildReducer();

  std::shared_ptr<Group> group_;
  models::ModelImpl& model_;
  std::vector<bool> trainable_;  // the requires_grad of every parameter the reducer was built for
  std::unique_ptr<c10d::Reducer> reducer_;
};

}  // namespace torch_attn::distributed
