// 3 x 3 convolutions of stride 1 and padding 1 by Winograd's F(2x2, 3x3), in float32 and
// bfloat16, and F(4x4, 3x3) in float32, for the inference plans and for training by Winograd
// (winograd_training.h: the forward pass, the input's gradient and, float32, the weight's).
// Each output (and each weight gradient) is summed in one fixed order: the same bits whatever
// the thread count.
//
// Each (M + 2) x (M + 2) input tile (M = 2 or 4) is transformed (B^T d B), multiplied with the
// transformed weights (G g G^T, computed in float64 and rounded once to the plan's dtype) as
// (M + 2)^2 independent products of [tiles x in] by [in x out], accumulating in float32, and
// transformed back (A^T m A in float32); bias, an optional residual and ReLU are added in float32
// and the result stored (bfloat16: rounded once, as oneDNN's direct bf16 convolution rounds it).
// F(2x2, 3x3) does 2.25x fewer multiplications than the direct form, F(4x4, 3x3) 4x.
//
// bfloat16: oneDNN has no bfloat16 Winograd, so a bf16 plan ran 3 x 3 convolutions directly while
// the fp32 plan did 2.25-4x fewer multiplications: on this project's machine a bf16 64-channel
// convolution at batch 64 took as long as the fp32 Winograd one. The products are AVX-512 BF16
// dot products; the two roundings of the transformed operands add an error of the order of
// bfloat16's own rounding of the inputs (the plan tests hold it). Only F(2x2, 3x3): its
// transforms only add and subtract, so rounding the transformed input to bfloat16 loses no more
// than rounding the input did; F(4x4)'s coefficients (up to 5 in, 8 out) would multiply
// bfloat16's error several times.
//
// float32: F(4x4, 3x3) (Lavin's points 0, +-1, +-2: within 2e-7 of the direct form's logits,
// relative to the largest, on ResNet18-CBAM) where the input gives enough tiles for its weights (4x
// the plain ones; WinogradF4Pays), F(2x2, 3x3) elsewhere from far fewer tiles
// (kWinogradF2Fp32MinTiles). oneDNN's own Winograd (F(4x4, 3x3), onednn_conv.h) only where these
// do not fit: it was slower than either at every batch measured.
//
// Tiles are processed in chunks, one per thread at a time, whose transformed input stays in the
// core's cache while the transformed weights pass through it 64 output channels at a time (laid
// out so, in the order they are read); float32 F(4x4) weights too large to pass through it for
// every chunk (WinogradF4Stationary) are read once instead, each block by one thread for every tile.
// Each thread takes the chunks (blocks) of its own share first, then those another thread has not
// reached yet: a preempted or slower core does not hold the others at the end of the region.
// Needs AVX-512 (BW/VL; bfloat16 also its BF16 part):
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

// The M x M output tiles of n images of h x w (the last row and column of tiles partly outside the
// edges that M does not divide).
int64_t WinogradTileCount(int64_t n, int64_t h, int64_t w, int m);

// Whether F(4x4, 3x3) pays over F(2x2, 3x3) (float32 only): from kWinogradF4Fp32MinTiles 4 x 4
// tiles (kWinogradF4Fp32WideMinTiles with kWinogradF4Fp32WideChannels input channels or more)
// where its transformed weights (36 x in x out floats) are at most
// kWinogradF4MaxChunkedWeightBytes, from kWinogradF4StationaryMinTiles where they are larger and
// run weights-stationary (WinogradF4Stationary).
// Measured on a ResNet18-CBAM at 32 x 32, this project's machine, plans with and without taking
// turns call by call. A predictor's plans (batch sizes 1 to 64, lending each other their
// weights), F(2x2) against F(4x4) ms: batch 1 (layer1's 64 tiles) 4.22 / 4.03, batch 8
// (layer1-2) 19.4 / 17.4, batch 32 68.1 / 48.4 (layer1-3; 51.2 with layer1-2 only), batch 64
// 130.9 / 93.0 (98.2); from 32 tiles (layer3 at batch 8 too) 18.5 at batch 8; from 128, 18.5
// (layer2 left out); layer4 as well (512 channels, 37.7 MB of weights a convolution) at batch 64,
// 129.0. A plan made alone (one batch size, nothing lent) held less within its budget (then half the
// model's convolution weights): layer3's F(4x4) weights (9.4 MB a convolution, 3x the plain ones
// added) left layer4 none, so with 256 channels batch 64 took 123.7 ms and batch 32 64.6, with
// 128 at most 116.6 and 61.2, F(2x2) alone 129.9 and 69.0. So F(4x4) stopped at 128 channels
// until 2026-12-05; then, with a plan's budget at 1.25 copies of the weights (inference_plan.cc:
// layer1-3 by F(4x4) and layer4 by F(2x2) add 50.1 MB, one copy is 44.6), 256 channels (layer3
// from batch 16, its 64 4 x 4 tiles): a layer3 convolution alone at batch 32, 5.3-5.5 ms by
// F(2x2) against 3.2-3.5 by F(4x4) (the cache flushed or not); a predictor's plans (1 to 64) in
// alternating processes, five rounds, batch 16 344.1, 336.8, 323.8, 361.5, 314.4 img/s against
// 360.5, 380.5, 371.6, 369.9, 339.4, batch 32 360.6, 360.8, 360.2, 386.1, 346.3 against 392.5,
// 400.6, 408.8, 400.2, 368.4 (+7% and +9%; batch 1 unchanged: the gain from batch 1 to 16 1.81-1.91
// before, 1.89-2.09 after). Training by Winograd takes the same forms (winograd_training.h): a
// step at batch 64, seven rounds in alternating processes, median 869 ms before, 835 after.
// Layer4 (512 channels, 37.7 MB of F(4x4) weights a convolution) stayed F(2x2) in this schedule: at
// batch 64, 129.0 ms against 93.0 (above), its weights read from memory for every chunk of tiles.
// Weights-stationary it pays (below).
// From 32 tiles with 256 input channels (layer3 from batch 8; 2026-12-05, second session, with
// the budget at 3 copies): a predictor's plans for batch 8 and 12 in alternating processes, five
// rounds, batch 8 319.1, 260.2, 326.5, 321.4, 316.0 img/s against 330.3, 311.9, 337.4, 330.7,
// 319.7 (+3.5%, ahead in all five), batch 12 347.7, 303.7, 348.4, 334.9, 324.9 against 315.0,
// 368.8, 376.8, 373.7, 367.4 (+10%, four of five); from 32 tiles whatever the channels, layer2's
// 128 at batch 2 lost (196.6, 197.1, 195.8 against 161.3, 179.8, 177.9: 32 tiles in chunks of
// twelve, three chunks for two threads).
constexpr int64_t kWinogradF4Fp32MinTiles = 64;
constexpr int64_t kWinogradF4Fp32WideMinTiles = 32;
constexpr int64_t kWinogradF4Fp32WideChannels = 256;
constexpr int64_t kWinogradF4MaxChunkedWeightBytes = 36 * 256 * 256 * 4;

// Whether F(4x4, 3x3) weights for these channel counts are too large for the chunked schedule
// (more than kWinogradF4MaxChunkedWeightBytes, ResNet18's layer4) and run weights-stationary: a
// group of tiles (all of them where their transformed input and products fit 16 MB) transformed
// first, then each block of weights read once for the whole group, parallel over blocks and
// transformed positions. A layer4 convolution alone (a C++ harness, two threads, 2026-12-05), F(2x2)
// chunked against F(4x4) stationary (chunked): batch 8 1.39 against 1.64 ms (2.18), 16 2.79 /
// 2.09 (3.52), 32 5.17 / 3.81 (5.99), 64 10.47 / 7.24 (11.96); layer1-3's shapes were slower
// stationary at every batch (their weights stay in the cache between chunks). So from
// kWinogradF4StationaryMinTiles tiles (batch 16 for layer4). Float32 inference only: training by
// Winograd keeps such convolutions F(2x2) (winograd_training.h; its weight gradient has no
// stationary schedule).
constexpr int64_t kWinogradF4StationaryMinTiles = 16;
bool WinogradF4Stationary(int64_t in_channels, int64_t out_channels);
bool WinogradF4Pays(at::ScalarType dtype, int64_t n, int64_t h, int64_t w, int64_t in_channels, int64_t out_channels);

// The bytes WinogradWeights gives for these channel counts and output tile (2: 16/9 of the plain
// weights; 4: 4x).
int64_t WinogradWeightBytes(at::ScalarType dtype, int64_t in_channels, int64_t out_channels, int tile);

// The transformed weights of an OC x IC x 3 x 3 float32 or bfloat16 weight (any layout) for
// F(tile x tile, 3 x 3) (tile 2, or 4 in float32): U = G g G^T per (out, in) pair, in the
// weight's dtype, laid out [(tile + 2)^2][OC / 64][IC / p][64][p] (blocks of 64 output channels;
// p = 2 in bfloat16, pairs of input channels together, as the dot product takes them; 1 in
// float32).
torch::Tensor WinogradWeights(const torch::Tensor& weight, int tile);

// The output tile edge of transformed weights WinogradWeights made (2: F(2x2, 3x3), 4: F(4x4,
// 3x3)), read off their first dimension; 0 for anything else.
int WinogradTile(const torch::Tensor& u);

// out = relu?(conv3x3(x, weights, stride 1, padding 1) + bias (+ out, when accumulate)).
// x: N x IC x H x W float32 or bfloat16, channels-last; u: WinogradWeights of the same dtype (its
// first dimension says which form);
// bias: OC float32; out: N x OC x H x W in x's dtype, channels-last (read first when accumulate).
void RunWinograd(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& bias, bool relu, bool accumulate, torch::Tensor& out);

// The weight's gradient of conv3x3(x, weight) (stride 1, padding 1) for the output's gradient
// `grad`, by F(tile x tile, 3 x 3) (tile 2 or 4): the adjoints of the forward pass's transforms and
// products (du = v^T dm summed over the tiles per transformed position, then G^T du G in float64),
// 2.25x (F(2x2)) or 4x (F(4x4)) fewer multiplications than the direct form. float32 only: x N x
// IC x H x W and grad N x OC x H x W, both channels-last; -> OC x IC x 3 x 3 float32, contiguous.
// Each value of du is summed by one task over the tiles in order: the same bits whatever the thread
// count. Keeps the calling thread's buffers for its next call: a chunk of transformed tiles (at
// most 16 MB) and du ((tile + 2)^2 x IC x OC floats).
torch::Tensor WinogradWeightGradient(const torch::Tensor& x, const torch::Tensor& grad, int tile);

}  // namespace torch_attn::models
