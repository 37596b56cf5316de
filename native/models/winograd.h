// 3 x 3 convolutions of stride 1 and padding 1 by Winograd's F(2x2, 3x3), in float32 and
// bfloat16, for the inference plans.
//
// Each 4 x 4 input tile is transformed (B^T d B: only additions and subtractions), multiplied with
// the transformed weights (G g G^T, computed in float64 and rounded once to the plan's dtype) as 16
// independent products of [tiles x in] by [in x out], accumulating in float32, and transformed back
// (A^T m A in float32); bias, an optional residual and ReLU are added in float32 and the result
// stored (bfloat16: rounded once, as oneDNN's direct bf16 convolution rounds it). 2.25x fewer
// multiplications than the direct form.
//
// bfloat16: oneDNN has no bfloat16 Winograd, so a bf16 plan ran 3 x 3 convolutions directly while
// the fp32 plan did 2.25-4x fewer multiplications: on this project's machine a bf16 64-channel
// convolution at batch 64 took as long as the fp32 Winograd one. The products are AVX-512 BF16
// dot products; the two roundings of the transformed operands add an error of the order of
// bfloat16's own rounding of the inputs (the plan tests hold it). F(2x2, 3x3) and not F(4x4,
// 3x3): its transforms only add and subtract, so rounding the transformed input to bfloat16 loses
// no more than rounding the input did; F(4x4)'s coefficients (up to 5) would multiply bfloat16's
// error several times.
//
// float32: oneDNN's own Winograd (F(4x4, 3x3), onednn_conv.h) pays only on many tiles; at batch 1
// its transforms cost more than they save (WinogradFp32Pays). This one, fused multiply-adds on the
// same tiling, pays from far fewer tiles (kWinogradF2Fp32MinTiles), so float32 plans take it where
// oneDNN's does not pay. Within a few float32 roundings of the direct form.
//
// Tiles are processed in chunks, one per thread at a time, whose transformed input stays in the
// core's cache while the transformed weights pass through it 64 output channels at a time (laid
// out so, in the order they are read). Needs AVX-512 (BW/VL; bfloat16 also its BF16 part):
// WinogradSupported says whether this CPU has it. Core only: no N-API.
#pragma once

#include <torch/torch.h>

namespace torch_attn::models {

// Whether this CPU runs the kernel for dtype (float32 or bfloat16).
bool WinogradSupported(at::ScalarType dtype);

// Whether a convolution of these channel counts can run here: input channels in multiples of 16,
// output channels in multiples of 64 (every 3 x 3 convolution of ResNet, VGG and CBAM-CNN but
// their first).
bool WinogradFits(int64_t in_channels, int64_t out_channels);

// Whether an input of n images of h x w gives enough 2 x 2 tiles for Winograd to pay: its
// transformed weights are 16/9 of the plain ones and are read in full for every chunk of tiles,
// so few tiles leave it bound by memory.
// bfloat16, measured on a ResNet18-CBAM at 32 x 32, this project's machine, plans with and without
// taking turns call by call: from 32 tiles the stages gain (batch 2: layer3's 32 tiles; batch 8:
// layer4's), below they lose (batch 1 with layer3's 16 tiles, 3% slower; with layer4's 4 as well,
// 16%).
constexpr int64_t kWinogradBf16MinTiles = 32;
// float32, measured the same way at batch 1 (layer1's 256 tiles, layer2's 64, layer3's 16): from
// 32 tiles 4.49 ms, from 64 4.52, from 16 (layer3 too) 4.82, none 4.61.
constexpr int64_t kWinogradF2Fp32MinTiles = 32;
bool WinogradPays(at::ScalarType dtype, int64_t n, int64_t h, int64_t w);

// The bytes WinogradWeights gives for these channel counts (16/9 of the plain weights).
int64_t WinogradWeightBytes(at::ScalarType dtype, int64_t in_channels, int64_t out_channels);

// The transformed weights of an OC x IC x 3 x 3 float32 or bfloat16 weight (any layout): U = G g
// G^T per (out, in) pair, in the weight's dtype, laid out [16][OC / 64][IC / p][64][p] (blocks of
// 64 output channels; p = 2 in bfloat16, pairs of input channels together, as the dot product
// takes them; 1 in float32).
torch::Tensor WinogradWeights(const torch::Tensor& weight);

// out = relu?(conv3x3(x, weights, stride 1, padding 1) + bias (+ out, when accumulate)).
// x: N x IC x H x W float32 or bfloat16, channels-last; u: WinogradWeights of the same dtype;
// bias: OC float32; out: N x OC x H x W in x's dtype, channels-last (read first when accumulate).
void RunWinograd(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& bias, bool relu, bool accumulate, torch::Tensor& out);

}  // namespace torch_attn::models
