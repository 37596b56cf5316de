// Adam and AdamW with LibTorch's update rules, done as one pass over each parameter instead of
// LibTorch's eight tensor operations (mul_, add_, mul_, addcmul_, sqrt, div, add_, addcdiv_,
// each a trip through memory and a temporary). The arithmetic is the same, operation for
// operation and rounded to float at the same points, so a step gives the same bits as
// torch::optim::Adam / AdamW (a test holds them equal); the state (step, exp_avg, exp_avg_sq,
// max_exp_avg_sq) is theirs, so checkpoints and StateByName do not change.
//
// The fused pass runs where every parameter with a gradient is a dense float32 CPU tensor whose
// gradient and moments share its strides, on CPUs with AVX-512; any other step is LibTorch's own.
// TORCH_ATTN_FUSED_OPTIMIZER=0 (read when the optimizer is made) keeps LibTorch's step always.
// Core only: no N-API.
#pragma once

#include <torch/torch.h>

namespace torch_attn::training {

// Whether optimizers made now take the fused pass where it applies (the CPU has AVX-512 and
// TORCH_ATTN_FUSED_OPTIMIZER is not 0).
bool FusedAdamAvailable();

// Whether this optimizer is one of the fused ones (its steps take the fused pass where it applies).
bool IsFused(const torch::optim::Optimizer& optimizer);

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace torch_attn::training
