// Every BatchNorm of torch-attn's models runs through BatchNorm() below, so that data-parallel
// training can make them synchronised (PyTorch's SyncBatchNorm, what convert_sync_batchnorm
// gives): while a SyncBatchNormScope is open on this thread, a BatchNorm in training mode takes
// its mean and variance over the whole batch of all ranks, and its backward sums the statistics'
// gradients over the ranks. Outside a scope, or in eval mode, it is the module's own forward.
// The scope's owner (distributed/data_parallel) supplies the sum over ranks, so modules do not
// depend on the distributed layer.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace torch_attn::modules {

// Sums a small tensor over every rank, in place (a blocking all-reduce).
using SumOverRanks = std::function<void(torch::Tensor&)>;

class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(SumOverRanks sum);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  const SumOverRanks* previous_;
  SumOverRanks sum_;
};

// The scope open on this thread, or nullptr.
const SumOverRanks* ActiveSyncBatchNorm();

// Training-mode BatchNorm over the batches of all ranks: statistics per channel (dim 1) summed
// over the ranks in float64, the running statistics updated as BatchNorm does with the global
// count; the output in the input's dtype.
torch::Tensor SyncBatchNormForward(const torch::Tensor& x, const torch::nn::BatchNormOptions& options, const torch::Tensor& weight,
                                   const torch::Tensor& bias, torch::Tensor& running_mean, torch::Tensor& running_var,
                                   torch::Tensor& num_batches_tracked, const SumOverRanks& sum);

template <size_t D, typename Derived>
torch::Tensor BatchNorm(torch::nn::BatchNormImplBase<D, Derived>& bn, const torch::Tensor& x) {
  const SumOverRanks* sum = ActiveSyncBatchNorm();
  // (A shape BatchNorm refuses goes to its own forward, for its own error.)
  if (sum == nullptr || !bn.is_training() || x.dim() < 2 || x.size(1) != bn.options.num_features()) return bn.forward(x);
  return SyncBatchNormForward(x, bn.options, bn.weight, bn.bias, bn.running_mean, bn.running_var, bn.num_batches_tracked, *sum);
}

}  // namespace torch_attn::modules
