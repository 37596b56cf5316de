// Winograd 3 x 3 convolutions in training, an opt-in of a training step (StepOptions::winograd).
//
// LibTorch trains every convolution by oneDNN's direct kernels: forward, the input's gradient and
// the weight's gradient, ~75% of a ResNet18 training step on this project's CPU. The inference
// plans' Winograd kernel (winograd.h) does 2.25-4x fewer multiplications for the 3 x 3, stride-1,
// padding-1 convolutions; in training it computes the forward pass and the input's gradient (which
// is itself such a convolution: the weights with input and output channels swapped and rotated by
// 180 degrees), and in float32 the weight's gradient by the same transforms' adjoints
// (WinogradWeightGradient); bfloat16's weight gradient stays with LibTorch
// (at::convolution_backward: the float32 kernel on the widened operands made a ResNet18-CBAM step
// 4% slower, 720 against 692 ms, and a bfloat16 form, the tiles paired for the dot product, was no
// faster; docs/measurements.md, "The weight's gradient by Winograd").
// Off by default: the results differ from PyTorch's (and the default path's) in the last bits, as
// cuDNN's Winograd differs from its direct kernels; the rest of torch-attn's training is
// bit-identical to PyTorch's.
//
// From 1024 2 x 2 tiles (the weights are transformed on every call; layer4's 256 tiles at batch
// 64 lost with the weight's gradient by Winograd as well: 965 against 900 ms a step). float32:
// F(4x4, 3x3) where the weights are at most 256 x 256 channels (WinogradF4Pays, and not the plans'
// weights-stationary schedule, WinogradF4Stationary, which has no weight gradient: layer1-3 of a
// ResNet18 at batch 64), F(2x2, 3x3) above. bfloat16
// (autocast): F(2x2, 3x3) on bfloat16 inputs and weights, as autocast would cast them for
// LibTorch's convolution. Everything else (other shapes, too few tiles, CPUs without AVX-512, CUDA)
// runs as before. Core only: no N-API.
#pragma once

#include <torch/torch.h>

namespace torch_attn::models {

// While one is alive on a thread, convolutions there that fit (above) train by Winograd.
class WinogradTrainingScope {
 public:
  explicit WinogradTrainingScope(bool on);
  ~WinogradTrainingScope();
  WinogradTrainingScope(const WinogradTrainingScope&) = delete;
  WinogradTrainingScope& operator=(const WinogradTrainingScope&) = delete;

 private:
  bool previous_;
};

// The form this convolution of x trains by in the active scope: 4 (F(4x4, 3x3)), 2 (F(2x2, 3x3)),
// or 0: not by Winograd (no scope, autograd off, not a 3 x 3 stride-1 padding-1 ungrouped
// convolution without bias on a CPU tensor, channels or tiles that do not pay); and the call that
// runs it with that form.
int WinogradTrainingTile(const torch::nn::Conv2dImpl& conv, const torch::Tensor& x);
torch::Tensor WinogradTrainingConv(torch::nn::Conv2dImpl& conv, const torch::Tensor& x, int tile);

// The autograd function on its own (tests): conv3x3(x, weight) with stride 1 and padding 1, x and
// weight of one dtype (float32 or bfloat16); `tile` 2 or 4 (float32 only).
torch::Tensor WinogradConv3x3(const torch::Tensor& x, const torch::Tensor& weight, int tile);

}  // namespace torch_attn::models
