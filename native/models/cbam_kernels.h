// The per-image loops of CBAM under an inference plan (inference_plan.cc), on channels-last
// activations in float32 or bfloat16: rows of c channels, one per pixel. Arithmetic is float32
// either way; bfloat16 values are widened on load and rounded to nearest-even on store, as
// LibTorch's bfloat16 ops do, so a product of two bfloat16 values rounds exactly as theirs. AVX-512
// where the CPU has it (chosen at run time; the addon is built for the baseline x86-64), plain loops
// elsewhere. A NaN wins every maximum, as in PyTorch. Core only: no N-API.
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>

namespace torch_attn::models::cbam_kernels {

// sum[j] and max[j] over the hw rows of x, for each of the c channels.
void PoolChannels(const float* x, int64_t hw, int64_t c, float* sum, float* max);
void PoolChannels(const c10::BFloat16* x, int64_t hw, int64_t c, float* sum, float* max);

// out[p][j] = x[p][j] * w[j]; with desc, also desc[2p + mean_at] = the mean of out[p][:] and
// desc[2p + 1 - mean_at] = its maximum (CBAM's spatial descriptors, channels-last).
void WeightChannels(const float* x, const float* w, int64_t hw, int64_t c, float* out, float* desc, int mean_at);
void WeightChannels(const c10::BFloat16* x, const float* w, int64_t hw, int64_t c, c10::BFloat16* out, c10::BFloat16* desc,
                    int mean_at);

// out[p][:] *= gate[p], in place.
void ScaleRows(float* out, const float* gate, int64_t hw, int64_t c);
void ScaleRows(c10::BFloat16* out, const float* gate, int64_t hw, int64_t c);

// The channel weights of CBAM's shared MLP, image by image: weights[b] = sigmoid(mlp(avg[b]) +
// mlp(max[b])), mlp(p) = W2 relu(W1 p + b1) + b2; pooled: the n average rows, then the n maximum
// rows, of c values; w1: hidden x c, w2: c x hidden, row-major; b1, b2 may be null. bf16: as
// autocast computes the eager module's Linear layers in bfloat16, each layer's input, the weights
// and the biases hold bfloat16 values (the caller rounds the weights and biases once; the pooled
// rows are rounded here) and each result (the layers' outputs, their sum, the sigmoid) is rounded
// to bfloat16; the products are summed in float32, in another order than LibTorch's. A NaN
// propagates as in PyTorch (ReLU keeps it).
void ChannelMlp(const float* pooled, int64_t n, int64_t c, int64_t hidden, const float* w1, const float* b1, const float* w2, const float* b2,
                bool bf16, float* weights);

}  // namespace torch_attn::models::cbam_kernels
