#include "models/cbam_kernels.h"

// GCC 12 warns about the undefined vector inside its own masked-load intrinsics once they are
// inlined here (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cmath>
#include <limits>

#include "runtime/fast_paths.h"

namespace torch_attn::models::cbam_kernels {

namespace {

inline bool TakesMax(float v, float m) { return v > m || std::isnan(v); }

void PoolChannelsPlain(const float* x, int64_t hw, int64_t c, float* sum, float* max) {
  for (int64_t j = 0; j < c; ++j) sum[j] = 0.f, max[j] = x[j];
  for (int64_t p = 0; p < hw; ++p) {
    for (int64_t j = 0; j < c; ++j) {
      const float v = x[p * c + j];
      sum[j] += v;
      if (TakesMax(v, max[j])) max[j] = v;
    }
  }
}

void WeightChannelsPlain(const float* x, const float* w, int64_t hw, int64_t c, float* out, float* desc, int mean_at) {
  for (int64_t p = 0; p < hw; ++p) {
    float sum = 0.f, max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < c; ++j) {
      const float v = x[p * c + j] * w[j];
      out[p * c + j] = v;
      sum += v;
      if (TakesMax(v, max)) max = v;
    }
    if (desc != nullptr) {
      desc[2 * p + mean_at] = sum / static_cast<float>(c);
      desc[2 * p + 1 - mean_at] = max;
    }
  }
}

void ScaleRowsPlain(float* out, const float* gate, int64_t hw, int64_t c) {
  for (int64_t p = 0; p < hw; ++p) {
    for (int64_t j = 0; j < c; ++j) out[p * c + j] *= gate[p];
  }
}

// AVX-512: 16 channels a step, the last step masked. A NaN is tracked in a mask of its own
// (vmaxps would drop it) and put back at the end.
#define TA_AVX512 __attribute__((target("avx512f")))

TA_AVX512 inline __mmask16 TailMask(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

TA_AVX512 void PoolChannels512(const float* x, int64_t hw, int64_t c, float* sum, float* max) {
  const __m512 nan = _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN());
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m = TailMask(c - j);
    __m512 s = _mm512_setzero_ps(), mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __mmask16 nans = 0;
    for (int64_t p = 0; p < hw; ++p) {
      const __m512 v = _mm512_maskz_loadu_ps(m, x + p * c + j);
      s = _mm512_add_ps(s, v);
      mx = _mm512_max_ps(mx, v);
      nans |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
    _mm512_mask_storeu_ps(sum + j, m, s);
    _mm512_mask_storeu_ps(max + j, m, _mm512_mask_blend_ps(nans, mx, nan));
  }
}

TA_AVX512 void WeightChannels512(const float* x, const float* w, int64_t hw, int64_t c, float* out, float* desc, int mean_at) {
  for (int64_t p = 0; p < hw; ++p) {
    __m512 s = _mm512_setzero_ps(), mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __mmask16 nans = 0;
    for (int64_t j = 0; j < c; j += 16) {
      const __mmask16 m = TailMask(c - j);
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + p * c + j), _mm512_maskz_loadu_ps(m, w + j));
      _mm512_mask_storeu_ps(out + p * c + j, m, v);
      s = _mm512_add_ps(s, v);  // masked-off lanes are 0: the sum is unchanged
      mx = _mm512_mask_max_ps(mx, m, mx, v);
      nans |= _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q);
    }
    if (desc != nullptr) {
      desc[2 * p + mean_at] = _mm512_reduce_add_ps(s) / static_cast<float>(c);
      desc[2 * p + 1 - mean_at] = nans != 0 ? std::numeric_limits<float>::quiet_NaN() : _mm512_reduce_max_ps(mx);
    }
  }
}

TA_AVX512 void ScaleRows512(float* out, const float* gate, int64_t hw, int64_t c) {
  for (int64_t p = 0; p < hw; ++p) {
    const __m512 g = _mm512_set1_ps(gate[p]);
    for (int64_t j = 0; j < c; j += 16) {
      const __mmask16 m = TailMask(c - j);
      _mm512_mask_storeu_ps(out + p * c + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, out + p * c + j), g));
    }
  }
}

}  // namespace

void PoolChannels(const float* x, int64_t hw, int64_t c, float* sum, float* max) {
  runtime::CpuHasAvx512() ? PoolChannels512(x, hw, c, sum, max) : PoolChannelsPlain(x, hw, c, sum, max);
}

void WeightChannels(const float* x, const float* w, int64_t hw, int64_t c, float* out, float* desc, int mean_at) {
  runtime::CpuHasAvx512() ? WeightChannels512(x, w, hw, c, out, desc, mean_at) : WeightChannelsPlain(x, w, hw, c, out, desc, mean_at);
}

void ScaleRows(float* out, const float* gate, int64_t hw, int64_t c) {
  runtime::CpuHasAvx512() ? ScaleRows512(out, gate, hw, c) : ScaleRowsPlain(out, gate, hw, c);
}

}  // namespace torch_attn::models::cbam_kernels
