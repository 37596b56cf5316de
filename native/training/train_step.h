// One optimisation step on a batch: forward, cross-entropy, backward, the NAM sparsity
// subgradient, optimizer step. What a custom training loop and the fine-tuner run per batch.
#pragma once

#include <torch/torch.h>

#include "models/model.h"

namespace torch_attn::training {

struct StepOptions {
  TORCH_ARG(double, label_smoothing) = 0;
  TORCH_ARG(double, nam_sparsity) = 0;  // lambda of the NAM |gamma| penalty; 0 disables it
  TORCH_ARG(double, grad_clip) = 0;     // max global gradient norm; 0 disables clipping
};

struct StepResult {
  double loss = 0;
  int64_t correct = 0;  // top-1 hits in the batch
  int64_t count = 0;
};

// Throws RangeError for labels that are not int64 class indices of the batch's size in
// [0, classes).
StepResult TrainStep(models::ModelImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& x,
                     const torch::Tensor& labels, const StepOptions& options);

void CheckLabels(const torch::Tensor& labels, int64_t batch, int64_t classes);

}  // namespace torch_attn::training
