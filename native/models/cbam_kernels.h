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

}  // namespace torch_attn::models::cbam_kernels
