#include "models/cbam_kernels.h"

// GCC 12 warns about the undefined vector inside its own intrinsics (the masked loads,
// _mm512_reduce_add_ps's halves) once they are inlined here (a false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <cmath>
#include <limits>
#include <vector>

#include "runtime/fast_paths.h"

namespace torch_attn::models::cbam_kernels {

namespace {

using c10::BFloat16;

inline bool TakesMax(float v, float m) { return v > m || std::isnan(v); }

// The value an element of type T holds for v: v itself in float32, v rounded to nearest-even in
// bfloat16 (c10::BFloat16's own conversion, as LibTorch's ops round).
template <typename T>
inline float Held(float v) {
  return static_cast<float>(static_cast<T>(v));
}

template <typename T>
void PoolChannelsPlain(const T* x, int64_t hw, int64_t c, float* sum, float* max) {
  for (int64_t j = 0; j < c; ++j) sum[j] = 0.f, max[j] = static_cast<float>(x[j]);
  for (int64_t p = 0; p < hw; ++p) {
    for (int64_t j = 0; j < c; ++j) {
      const float v = static_cast<float>(x[p * c + j]);
      sum[j] += v;
      if (TakesMax(v, max[j])) max[j] = v;
    }
  }
}

template <typename T>
void WeightChannelsPlain(const T* x, const float* w, int64_t hw, int64_t c, T* out, T* desc, int mean_at) {
  for (int64_t p = 0; p < hw; ++p) {
    float sum = 0.f, max = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < c; ++j) {
      const float v = Held<T>(static_cast<float>(x[p * c + j]) * w[j]);
      out[p * c + j] = static_cast<T>(v);
      sum += v;
      if (TakesMax(v, max)) max = v;
    }
    if (desc != nullptr) {
      desc[2 * p + mean_at] = static_cast<T>(sum / static_cast<float>(c));
      desc[2 * p + 1 - mean_at] = static_cast<T>(max);
    }
  }
}

template <typename T>
void ScaleRowsPlain(T* out, const float* gate, int64_t hw, int64_t c) {
  for (int64_t p = 0; p < hw; ++p) {
    for (int64_t j = 0; j < c; ++j) out[p * c + j] = static_cast<T>(static_cast<float>(out[p * c + j]) * gate[p]);
  }
}

// AVX-512: 16 channels a step, the last step masked. A NaN is tracked in a mask of its own
// (vmaxps would drop it) and put back at the end.
#define TA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

TA_AVX512 inline __mmask16 TailMask(int64_t left) { return left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1); }

TA_AVX512 inline __m512 Load(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
TA_AVX512 inline __m512 Load(const BFloat16* p, __mmask16 m) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// v rounded as T holds it (see Held): bfloat16's round-to-nearest-even on the bits; a NaN becomes
// the quiet NaN c10::BFloat16 makes.
TA_AVX512 inline __m512 Round(__m512 v, const float*) { return v; }
TA_AVX512 inline __m512 Round(__m512 v, const BFloat16*) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), lsb));
  r = _mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u)));
  const __m512 nan = _mm512_castsi512_ps(_mm512_set1_epi32(0x7FC00000));  // the high half stays NaN
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_castsi512_ps(r), nan);
}

// Stores v, which Round has already rounded (a bfloat16 store only drops the low 16 bits).
TA_AVX512 inline void Store(float* p, __mmask16 m, __m512 v) { _mm512_mask_storeu_ps(p, m, v); }
TA_AVX512 inline void Store(BFloat16* p, __mmask16 m, __m512 v) {
  _mm256_mask_storeu_epi16(p, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(v), 16)));
}

TA_AVX512 float Dot512(const float* a, const float* b, int64_t n) {
  __m512 s = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = TailMask(n - j);
    s = _mm512_fmadd_ps(Load(a + j, m), Load(b + j, m), s);
  }
  return _mm512_reduce_add_ps(s);
}

float DotPlain(const float* a, const float* b, int64_t n) {
  float s = 0.f;
  for (int64_t j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

template <typename T>
TA_AVX512 void PoolChannels512(const T* x, int64_t hw, int64_t c, float* sum, float* max) {
  const __m512 nan = _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN());
  for (int64_t j = 0; j < c; j += 16) {
    const __mmask16 m = TailMask(c - j);
    __m512 s = _mm512_setzero_ps(), mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __mmask16 nans = 0;
    for (int64_t p = 0; p < hw; ++p) {
      const __m512 v = Load(x + p * c + j, m);
      s = _mm512_add_ps(s, v);
      mx = _mm512_max_ps(mx, v);
      nans |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    }
    _mm512_mask_storeu_ps(sum + j, m, s);
    _mm512_mask_storeu_ps(max + j, m, _mm512_mask_blend_ps(nans, mx, nan));
  }
}

template <typename T>
TA_AVX512 void WeightChannels512(const T* x, const float* w, int64_t hw, int64_t c, T* out, T* desc, int mean_at) {
  for (int64_t p = 0; p < hw; ++p) {
    __m512 s = _mm512_setzero_ps(), mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __mmask16 nans = 0;
    for (int64_t j = 0; j < c; j += 16) {
      const __mmask16 m = TailMask(c - j);
      const __m512 v = Round(_mm512_mul_ps(Load(x + p * c + j, m), _mm512_maskz_loadu_ps(m, w + j)), out);
      Store(out + p * c + j, m, v);
      s = _mm512_add_ps(s, v);  // masked-off lanes are 0: the sum is unchanged
      mx = _mm512_mask_max_ps(mx, m, mx, v);
      nans |= _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q);
    }
    if (desc != nullptr) {
      desc[2 * p + mean_at] = static_cast<T>(_mm512_reduce_add_ps(s) / static_cast<float>(c));
      desc[2 * p + 1 - mean_at] = static_cast<T>(nans != 0 ? std::numeric_limits<float>::quiet_NaN() : _mm512_reduce_max_ps(mx));
    }
  }
}

template <typename T>
TA_AVX512 void ScaleRows512(T* out, const float* gate, int64_t hw, int64_t c) {
  for (int64_t p = 0; p < hw; ++p) {
    const __m512 g = _mm512_set1_ps(gate[p]);
    for (int64_t j = 0; j < c; j += 16) {
      const __mmask16 m = TailMask(c - j);
      Store(out + p * c + j, m, Round(_mm512_mul_ps(Load(out + p * c + j, m), g), out));
    }
  }
}

}  // namespace

void PoolChannels(const float* x, int64_t hw, int64_t c, float* sum, float* max) {
  runtime::CpuHasAvx512BwVl() ? PoolChannels512(x, hw, c, sum, max) : PoolChannelsPlain(x, hw, c, sum, max);
}
void PoolChannels(const BFloat16* x, int64_t hw, int64_t c, float* sum, float* max) {
  runtime::CpuHasAvx512BwVl() ? PoolChannels512(x, hw, c, sum, max) : PoolChannelsPlain(x, hw, c, sum, max);
}

void WeightChannels(const float* x, const float* w, int64_t hw, int64_t c, float* out, float* desc, int mean_at) {
  runtime::CpuHasAvx512BwVl() ? WeightChannels512(x, w, hw, c, out, desc, mean_at) : WeightChannelsPlain(x, w, hw, c, out, desc, mean_at);
}
void WeightChannels(const BFloat16* x, const float* w, int64_t hw, int64_t c, BFloat16* out, BFloat16* desc, int mean_at) {
  runtime::CpuHasAvx512BwVl() ? WeightChannels512(x, w, hw, c, out, desc, mean_at) : WeightChannelsPlain(x, w, hw, c, out, desc, mean_at);
}

void ChannelMlp(const float* pooled, int64_t n, int64_t c, int64_t hidden, const float* w1, const float* b1, const float* w2, const float* b2,
                bool bf16, float* weights) {
  const auto dot = runtime::CpuHasAvx512BwVl() ? Dot512 : DotPlain;
  const auto held = [bf16](float v) { return bf16 ? Held<BFloat16>(v) : v; };
  std::vector<float> input(c), middle(hidden), first(c);
  for (int64_t b = 0; b < n; ++b) {
    for (int r = 0; r < 2; ++r) {
      const float* p = pooled + (r * n + b) * c;
      for (int64_t j = 0; j < c; ++j) input[j] = held(p[j]);
      for (int64_t k = 0; k < hidden; ++k) {
        const float v = held(dot(w1 + k * c, input.data(), c) + (b1 != nullptr ? b1[k] : 0.f));
        middle[k] = v < 0.f ? 0.f : v;  // a NaN stays NaN
      }
      float* out = r == 0 ? first.data() : weights + b * c;
      for (int64_t j = 0; j < c; ++j) out[j] = held(dot(w2 + j * hidden, middle.data(), hidden) + (b2 != nullptr ? b2[j] : 0.f));
    }
    float* out = weights + b * c;
    for (int64_t j = 0; j < c; ++j) out[j] = held(1.f / (1.f + std::exp(-held(first[j] + out[j]))));
  }
}

void ScaleRows(float* out, const float* gate, int64_t hw, int64_t c) {
  runtime::CpuHasAvx512BwVl() ? ScaleRows512(out, gate, hw, c) : ScaleRowsPlain(out, gate, hw, c);
}
void ScaleRows(BFloat16* out, const float* gate, int64_t hw, int64_t c) {
  runtime::CpuHasAvx512BwVl() ? ScaleRows512(out, gate, hw, c) : ScaleRowsPlain(out, gate, hw, c);
}

}  // namespace torch_attn::models::cbam_kernels
