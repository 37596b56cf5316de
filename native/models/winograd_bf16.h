// bfloat16 3 x 3 convolutions of stride 1 by Winograd's F(2x2, 3x3), for the inference plans.
//
// oneDNN computes float32 3 x 3 convolutions by Winograd (onednn_conv.h) but has no bfloat16
// Winograd, so a bf16 plan ran them directly, at the CPU's bf16 peak, while the fp32 plan did
// 2.25-4x fewer multiplications: on this project's machine a bf16 64-channel convolution at batch
// 64 took as long as the fp32 Winograd one. Here: each 4 x 4 input tile is transformed
// (B^T d B, exact in float32, rounded once to bfloat16), multiplied with the transformed weights
// (G g G^T, rounded once to bfloat16) by AVX-512 BF16 dot products accumulating in float32 (16
// independent products of [tiles x in] by [in x out]), and transformed back (A^T m A in float32);
// bias, an optional residual and ReLU are added in float32 and the result rounded once to
// bfloat16, as oneDNN's direct bf16 convolution rounds it. 2.25x fewer multiplications than the
// direct form; the two roundings of the transformed operands add an error of the order of
// bfloat16's own rounding of the inputs (the plan tests hold it).
//
// F(2x2, 3x3) and not F(4x4, 3x3): its transforms only add and subtract, so rounding the
// transformed input to bfloat16 loses no more than rounding the input did; F(4x4)'s coefficients
// (up to 5) would multiply bfloat16's error several times. Tiles are processed in chunks, one per
// thread at a time, whose transformed input stays in the core's cache while the transformed
// weights pass through it 64 output channels at a time (laid out so, in the order they are read).
//
// Needs AVX-512 BF16 (and BW/VL); WinogradBf16Supported says whether this CPU has it. Core only:
// no N-API.
#pragma once

#include <torch/torch.h>

namespace torch_attn::models {

// Whether this CPU runs the kernel.
bool WinogradBf16Supported();

// Whether a convolution of these channel counts can run here: input channels in multiples of 16,
// output channels in multiples of 64 (every 3 x 3 convolution of ResNet, VGG and CBAM-CNN but
// their first).
bool WinogradBf16Fits(int64_t in_channels, int64_t out_channels);

// Whether an input of n images of h x w gives enough tiles (kWinogradBf16MinTiles) for Winograd
// to pay: its transformed weights are 16/9 of the plain ones and are read in full for every
// chunk of tiles, so few tiles leave it bound by memory. Measured on a ResNet18-CBAM at 32 x 32,
// this project's machine, plans with and without taking turns call by call: from 32 tiles the
// stages gain (batch 2: layer3's 32 tiles; batch 8: layer4's), below they lose (batch 1 with
// layer3's 16 tiles, 3% slower; with layer4's 4 as well, 16%).
constexpr int64_t kWinogradBf16MinTiles = 32;
bool WinogradBf16Pays(int64_t n, int64_t h, int64_t w);

// The bytes WinogradBf16Weights gives for these channel counts (16/9 of the plain bf16 weights).
int64_t WinogradBf16WeightBytes(int64_t in_channels, int64_t out_channels);

// The transformed weights of an OC x IC x 3 x 3 bfloat16 weight (any layout): U = G g G^T per
// (out, in) pair, rounded to bfloat16, laid out [16][OC / 64][IC / 2][64][2] (blocks of 64 output
// channels, pairs of input channels together, as the dot product takes them).
torch::Tensor WinogradBf16Weights(const torch::Tensor& weight);

// out = relu?(conv3x3(x, weights, stride 1, padding 1) + bias (+ out, when accumulate)).
// x: N x IC x H x W bfloat16, channels-last; u: WinogradBf16Weights; bias: OC float32; out:
// N x OC x H x W bfloat16, channels-last (read first when accumulate).
void RunWinogradBf16(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& bias, bool relu, bool accumulate, torch::Tensor& out);

}  // namespace torch_attn::models
