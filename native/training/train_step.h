// One optimisation step on a batch: forward, cross-entropy, backward, the NAM sparsity
// subgradient, optimizer step. What a custom training loop and the fine-tuner run per batch.
#pragma once

#include <torch/torch.h>

#include "distributed/data_parallel.h"
#include "models/model.h"
#include "training/grad_scaler.h"

namespace torch_attn::training {

struct StepOptions {
  TORCH_ARG(double, label_smoothing) = 0;
  TORCH_ARG(double, nam_sparsity) = 0;  // lambda of the NAM |gamma| penalty; 0 disables it
  TORCH_ARG(double, grad_clip) = 0;     // max global gradient norm; 0 disables clipping
  TORCH_ARG(models::Precision, precision) = models::Precision::kFp32;
  // With a replica: BatchNorms that train take their statistics over all ranks (SyncBatchNorm).
  TORCH_ARG(bool, sync_batch_norm) = false;
  // 3 x 3 convolutions forward and their input's gradient by Winograd (models/winograd_training.h):
  // faster, not bit-identical to PyTorch.
  TORCH_ARG(bool, winograd) = false;
};

struct StepResult {
  double loss = 0;
  int64_t correct = 0;  // top-1 hits in the batch
  int64_t count = 0;
  bool skipped = false;  // fp16: inf/NaN gradients, so the optimizer did not step
};

// Throws RangeError for labels that are not int64 class indices of the batch's size in
// [0, classes), and for a precision the model's device cannot run. fp16 needs `scaler` (its
// loss scaling), which the step updates. With `replica` the step is one rank's part of a
// data-parallel step: buffers from rank 0 before the forward, gradients averaged over the ranks
// during backward (the caller feeds each rank its own shard of the batch).
StepResult TrainStep(models::ModelImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& x,
                     const torch::Tensor& labels, const StepOptions& options, GradScaler* scaler = nullptr,
                     distributed::DataParallel* replica = nullptr);

void CheckLabels(const torch::Tensor& labels, int64_t batch, int64_t classes);

}  // namespace torch_attn::training
