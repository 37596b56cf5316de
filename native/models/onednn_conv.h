// A plan's convolution run on oneDNN's own API: the primitive made once for the plan's input
// shape (convolution + bias + fused ReLU, channels-last in and out), the weights reordered once
// into the layout it wants, and each call only wraps the input and a fresh output in oneDNN
// memory objects and executes. The mkldnn_prepacked ops LibTorch offers do the same work through
// its dispatcher, ideep's wrappers, a primitive-cache lookup and a few allocations per call;
// at batch 1 that was about a quarter of a ResNet18-CBAM pass (perf; see the README's Inference
// plans).
//
// Built only against the oneDNN LibTorch itself links (CMake checks libtorch_cpu's dependencies
// and the headers' major version; TORCH_ATTN_DIRECT_ONEDNN), and used only when the oneDNN
// loaded at run time is the version the headers describe. Elsewhere MakeDirectConv returns
// nullptr and plans run every convolution through the prepacked ops. Core only: no N-API.
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>
#include <vector>

namespace torch_attn::models {

class DirectConv;

// Whether this build and this process can run direct convolutions.
bool DirectConvAvailable();

// An ungrouped, undilated convolution. weight: OC x IC x KH x KW in the plan's dtype (float32 or bfloat16), channels-last; bias: OC
// float32. x: a channels-last input of the shape the primitive is made for. residual: the output
// is added to what its buffer holds before the ReLU (oneDNN's sum post-op; RunDirectConv's
// `accumulate`), a residual block's end in one pass. `siblings`: direct
// forms of the same weights made for other shapes; one whose reordered weights have the layout
// this shape needs lends them (no second copy). nullptr when unavailable, or when oneDNN has no
// implementation for this case.
//
// Winograd (DirectConvIsWinograd) needs weights of its own, up to 4x the plain ones and laid out
// per shape, so it is taken only while the reordered weights it adds (none when a sibling lends
// them) fit in `winograd_budget` bytes; *added_bytes says what it added.
std::shared_ptr<const DirectConv> MakeDirectConv(const torch::Tensor& weight, const torch::Tensor& bias, std::array<int64_t, 2> stride,
                                                 std::array<int64_t, 2> padding, bool relu, bool residual, const torch::Tensor& x,
                                                 const std::vector<std::shared_ptr<const DirectConv>>& siblings,
                                                 int64_t winograd_budget = 0, int64_t* added_bytes = nullptr);

// Runs it on x (channels-last, the shape and dtype it was made for): a new channels-last output,
// or, made with `residual`, the result written over `accumulate` (channels-last, the output's
// shape and dtype), which is returned.
torch::Tensor RunDirectConv(const DirectConv& conv, const torch::Tensor& x, const torch::Tensor& accumulate = {});

// The bytes of reordered weights it holds (shared with siblings or not).
int64_t DirectConvWeightBytes(const DirectConv& conv);

// Whether a float32 convolution of n images of in_channels, with an output of oh x ow, does enough
// work per tile for oneDNN's Winograd to pay (used where winograd.h's kernel does not fit): its
// 4 x 4 output tiles (n x ceil(oh/4) x ceil(ow/4)) times the input channels, at least
// kWinogradFp32MinTileChannels. Winograd transforms every tile's input and output and reads its
// transformed weights (16/9 of the plain ones here, more as oneDNN lays them out) once per call
// whatever the batch, so on few tiles of few channels the direct kernel wins. Measured on a
// ResNet18-CBAM at 32 x 32, this project's machine, plans with each threshold in one process
// taking turns: batch 1 with every 3 x 3 convolution by Winograd 4.62 ms against 4.33 with none
// (layer1's 64 tiles x 64 channels alone cost 0.24 ms), while layer2's 64 tiles x 128 channels at
// batch 4 and layer3's 32 x 256 at batch 8 gain or break even; from batch 16 every stage gains
// (38.4 ms all against 46.8 none).
constexpr int64_t kWinogradFp32MinTileChannels = 8192;
bool WinogradFp32Pays(int64_t n, int64_t in_channels, int64_t oh, int64_t ow);

// Whether it computes by Winograd: 3 x 3 convolutions of stride 1 and padding 1, input channels in
// multiples of 16 and output channels in multiples of 64, by winograd.h's F(2x2, 3x3) (float32 on
// AVX-512, bfloat16 on AVX-512 BF16) where the input gives enough tiles (WinogradPays), or its
// float32 F(4x4, 3x3) where that pays more (WinogradF4Pays); other
// float32 3 x 3 convolutions of stride 1, channels in multiples of 16, by oneDNN's F(4x4, 3x3)
// where oneDNN has it for the CPU and the input gives it enough work (WinogradFp32Pays). Its
// weights count against the plan's budget. TORCH_ATTN_WINOGRAD=0 turns both off.
bool DirectConvIsWinograd(const DirectConv& conv);
// Whether that is winograd.h's F(4x4, 3x3).
bool DirectConvIsWinogradF4(const DirectConv& conv);

}  // namespace torch_attn::models
