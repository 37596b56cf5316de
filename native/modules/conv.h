// Convolutions of the attention modules (CBAM's 2 -> 1 spatial conv, ECA's 1 -> 1 conv1d) and
// of the backbones, run as their torch::nn module does, except on a LibTorch whose oneDNN is
// known to return wrong input gradients for them (runtime/onednn.h): there the forward pass is
// unchanged (bit for bit PyTorch's) and the input gradient comes from ATen's im2col kernel.
#pragma once

#include <torch/torch.h>

namespace torch_attn::modules {

torch::Tensor Conv(torch::nn::Conv2dImpl& conv, const torch::Tensor& x);
torch::Tensor Conv(torch::nn::Conv1dImpl& conv, const torch::Tensor& x);

}  // namespace torch_attn::modules
