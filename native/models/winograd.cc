#include "models/winograd.h"

// GCC 12 warns about the undefined vector inside its own intrinsics once they are inlined here (a
// false positive, as in cbam_kernels.cc).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>
#include <vector>

#include "runtime/fast_paths.h"

namespace torch_attn::models {

namespace {

// Every function here carries the BF16 target, so that the float32 and the bfloat16 instances of
// one template share it; only the bfloat16 instances contain BF16 instructions (the compiler emits
// them only for the intrinsics that name them), so the float32 ones run on any AVX-512 CPU.
#define TA_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

constexpr int kRows = 6;               // tiles a step of the product (6 x 4 accumulators of 16 floats)
constexpr int kBlocks = 4;             // 16-channel output blocks a step: output channels in multiples of 64
constexpr int64_t kBlockColumns = 16 * kBlocks;
// A chunk's transformed input and one block of output channels' products: within a core's L2.
constexpr int64_t kChunkBytes = 384 << 10;

// The kept buffers of transformed tiles and products: vectors on 64-byte boundaries, so that
// each 16-float row segment the transforms load or store is one cache line (ic and the block
// width are multiples of 16). std::vector's own allocator gave glibc's 16-byte alignment, and
// every such access then straddled two lines.
template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlignment{64};
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlignment)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlignment); }
  friend bool operator==(const CacheLineAllocator&, const CacheLineAllocator&) { return true; }
  friend bool operator!=(const CacheLineAllocator&, const CacheLineAllocator&) { return false; }
};
template <typename T>
using Buffer = std::vector<T, CacheLineAllocator<T>>;

// 16 bfloat16 values widened to float32 (exact).
TA_AVX512_BF16 inline __m512 Load(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// 16 float32 values rounded to nearest-even bfloat16 (the CPU's own conversion, as oneDNN's
// bf16 convolutions round) and stored.
TA_AVX512_BF16 inline void Store(uint16_t* p, __m512 v) {
  const __m256bh h = _mm512_cvtneps_pbh(v);
  std::memcpy(p, &h, sizeof h);
}

TA_AVX512_BF16 inline __m512 Load(const float* p) { return _mm512_loadu_ps(p); }
TA_AVX512_BF16 inline void Store(float* p, __m512 v) { _mm512_storeu_ps(p, v); }

// The M x M output tiles of images of h x w (the last row or column of tiles partly outside an
// edge that M does not divide), numbered image by image, row by row.
struct TileGrid {
  int64_t h, w, m, across, per_image;
  TileGrid(int64_t h, int64_t w, int64_t m) : h(h), w(w), m(m), across((w + m - 1) / m), per_image((h + m - 1) / m * across) {}
  // Tile t's first output pixel: image, row, column.
  struct Origin {
    int64_t n, y, x;
  };
  Origin At(int64_t t) const { return {t / per_image, m * ((t % per_image) / across), m * (t % across)}; }
  // Tile t's M x M output pixels in a channels-last tensor of `channels` channels (base: its first
  // pixel's first channel wanted), nullptr for those past the image's edge.
  template <int M, typename T>
  void Pixels(int64_t t, T* base, int64_t channels, T* (&pixel)[M][M]) const {
    const auto [n, oy, ox] = At(t);
    for (int a = 0; a < M; ++a) {
      for (int b = 0; b < M; ++b) pixel[a][b] = (oy + a < h && ox + b < w) ? base + ((n * h + oy + a) * w + ox + b) * channels : nullptr;
    }
  }
};

// F(M x M, 3 x 3): an (M + 2) x (M + 2) input tile gives kTiles transformed values, M x M outputs.
template <int M>
struct Form {
  static constexpr int kIn = M + 2;
  static constexpr int kTiles = kIn * kIn;
};

// B^T d for one column (or row) of an F(4x4, 3x3) input tile (Lavin's points 0, +-1, +-2):
// r0 = 4 d0 - 5 d2 + d4, r1 = -4 d1 - 4 d2 + d3 + d4, r2 = 4 d1 - 4 d2 - d3 + d4,
// r3 = -2 d1 - d2 + 2 d3 + d4, r4 = 2 d1 - d2 - 2 d3 + d4, r5 = 4 d1 - 5 d3 + d5.
TA_AVX512_BF16 inline void InputF4(const __m512 d[6], __m512 r[6]) {
  const __m512 four = _mm512_set1_ps(4.f), five = _mm512_set1_ps(5.f), two = _mm512_set1_ps(2.f);
  const __m512 a = _mm512_fnmadd_ps(four, d[2], d[4]);  // d4 - 4 d2
  const __m512 b = _mm512_fmsub_ps(four, d[1], d[3]);   // 4 d1 - d3
  const __m512 c = _mm512_sub_ps(d[4], d[2]);
  const __m512 e = _mm512_mul_ps(two, _mm512_sub_ps(d[1], d[3]));
  r[0] = _mm512_add_ps(_mm512_fnmadd_ps(five, d[2], _mm512_mul_ps(four, d[0])), d[4]);
  r[1] = _mm512_sub_ps(a, b);
  r[2] = _mm512_add_ps(a, b);
  r[3] = _mm512_sub_ps(c, e);
  r[4] = _mm512_add_ps(c, e);
  r[5] = _mm512_add_ps(_mm512_fnmadd_ps(five, d[3], _mm512_mul_ps(four, d[1])), d[5]);
}

// A^T m for one column (or row) of an F(4x4, 3x3) product: y0 = m0 + m1 + m2 + m3 + m4,
// y1 = m1 - m2 + 2 (m3 - m4), y2 = m1 + m2 + 4 (m3 + m4), y3 = m1 - m2 + 8 (m3 - m4) + m5.
TA_AVX512_BF16 inline void OutputF4(const __m512 m[6], __m512 y[4]) {
  const __m512 p = _mm512_add_ps(m[1], m[2]), q = _mm512_sub_ps(m[1], m[2]);
  const __m512 s = _mm512_add_ps(m[3], m[4]), t = _mm512_sub_ps(m[3], m[4]);
  y[0] = _mm512_add_ps(_mm512_add_ps(m[0], p), s);
  y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.f), t, q);
  y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.f), s, p);
  y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.f), t, q), m[5]);
}

// out's columns = f(in's columns): a 1-D transform (InputF4, OutputF4) down each column of a tile.
template <auto f, int kIn, int kOut, int kColumns>
TA_AVX512_BF16 inline void EachColumn(const __m512 (&in)[kIn][kColumns], __m512 (&out)[kOut][kColumns]) {
  for (int j = 0; j < kColumns; ++j) {
    __m512 column[kIn], result[kOut];
    for (int i = 0; i < kIn; ++i) column[i] = in[i][j];
    f(column, result);
    for (int i = 0; i < kOut; ++i) out[i][j] = result[i];
  }
}

// Rows [I0, I1) of B^T d B for a 16-channel slice of an F(4x4) input tile (pixel: its 6 x 6
// pixels, nullptr past an edge): the rows of B^T d (InputF4 down each column, keeping only those
// rows, whose pixels alone are loaded), then B along each, stored `step` apart (xi = 6 i + j).
// Four calls, a row or two each, hold at most 12 of B^T d's 36 vectors: the whole of it, with d
// beside it, outgrew the 32 registers and went through the stack (58 moves a slice). The same
// operations per value as InputF4 over the whole tile: the same bits.
template <int I0, int I1, typename T>
TA_AVX512_BF16 inline void InputF4Rows(const T* const (&pixel)[6][6], int64_t c, T* out, int64_t step) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 t[I1 - I0][6];
  for (int j = 0; j < 6; ++j) {
    __m512 d[6], column[6];
    for (int i = 0; i < 6; ++i) d[i] = pixel[i][j] != nullptr ? Load(pixel[i][j] + c) : zero;
    InputF4(d, column);
    for (int i = I0; i < I1; ++i) t[i - I0][j] = column[i];
  }
  for (int i = I0; i < I1; ++i) {
    __m512 row[6];
    InputF4(t[i - I0], row);
    for (int j = 0; j < 6; ++j) Store(out + (6 * i + j) * step, row[j]);
  }
}

// The transformed input of tiles [first, first + count) (global index: image, tile row, tile
// column): v[xi][row][channel], xi = kIn i + j of B^T d B, rows `stride` apart per xi. T: the
// element (float, or uint16_t holding bfloat16), in and out.
template <typename T, int M>
TA_AVX512_BF16 void TransformInput(const T* x, const TileGrid& grid, int64_t ic, int64_t first, int64_t count, int64_t stride, T* v) {
  constexpr int kIn = Form<M>::kIn;
  const __m512 zero = _mm512_setzero_ps();
  const int64_t h = grid.h, w = grid.w;
  for (int64_t r = 0; r < count; ++r) {
    const auto [n, oy, ox] = grid.At(first + r);
    const int64_t y0 = oy - 1, x0 = ox - 1;  // padding 1
    const T* pixel[kIn][kIn];
    for (int i = 0; i < kIn; ++i) {
      for (int j = 0; j < kIn; ++j) {
        const int64_t y = y0 + i, xx = x0 + j;
        pixel[i][j] = (y >= 0 && y < h && xx >= 0 && xx < w) ? x + ((n * h + y) * w + xx) * ic : nullptr;
      }
    }
    for (int64_t c = 0; c < ic; c += 16) {
      T* out = v + r * ic + c;
      if constexpr (M == 4) {
        InputF4Rows<0, 1>(pixel, c, out, stride * ic);  // row 0 takes d's rows 0, 2, 4
        InputF4Rows<1, 3>(pixel, c, out, stride * ic);  // rows 1-4 take 1-4
        InputF4Rows<3, 5>(pixel, c, out, stride * ic);
        InputF4Rows<5, 6>(pixel, c, out, stride * ic);  // row 5 takes 1, 3, 5
      } else {
        static_assert(M == 2);
        __m512 d[kIn][kIn], t[kIn][kIn];
        for (int i = 0; i < kIn; ++i) {
          for (int j = 0; j < kIn; ++j) d[i][j] = pixel[i][j] != nullptr ? Load(pixel[i][j] + c) : zero;
        }
        for (int j = 0; j < 4; ++j) {  // B^T d
          t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
          t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
          t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
          t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
        }
        for (int i = 0; i < 4; ++i) {  // (B^T d) B
          T* row = out + (4 * i) * stride * ic;
          Store(row, _mm512_sub_ps(t[i][0], t[i][2]));
          Store(row + stride * ic, _mm512_add_ps(t[i][1], t[i][2]));
          Store(row + 2 * stride * ic, _mm512_sub_ps(t[i][2], t[i][1]));
          Store(row + 3 * stride * ic, _mm512_sub_ps(t[i][1], t[i][3]));
        }
      }
    }
  }
}

// The 256 bytes of a block of transformed weights that one step of the product reads (an input
// channel's 64 float32 values, or a pair's 64 x 2 bfloat16 ones), fetched into the core's L2
// ahead of use.
template <typename T>
inline void PrefetchStep(const T* p) {
  const char* bytes = reinterpret_cast<const char*>(p);
  for (int line = 0; line < 4; ++line) _mm_prefetch(bytes + 64 * line, _MM_HINT_T1);
}

// m[kRows rows, 64 columns] = v[kRows rows, ic] x u[ic, 64 columns]: u one block of the
// transformed weights, read in order, v's rows ic apart, m's kBlockColumns. 24 accumulators, 4
// weight vectors and a broadcast: 29 of the 32 vector registers. With kPrefetch, `next` (a block
// of weights in the same layout, to be multiplied next) is fetched into L2 step by step meanwhile.
// bfloat16: u [ic / 2][64][2] (pairs of input channels, as the dot product takes them).
template <bool kPrefetch = false>
TA_AVX512_BF16 inline void Product(const uint16_t* v, int64_t ic, const uint16_t* u, float* m, const uint16_t* next = nullptr) {
  __m512 acc[kRows][kBlocks];
  for (int r = 0; r < kRows; ++r) {
    for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_setzero_ps();
  }
  int64_t k = 0;
  do {  // (as the float32 product's loop, below)
    if constexpr (kPrefetch) PrefetchStep(next + k * kBlockColumns);
    __m512bh weights[kBlocks];
    for (int b = 0; b < kBlocks; ++b) weights[b] = (__m512bh)_mm512_loadu_si512(u + k * kBlockColumns + 32 * b);
    for (int r = 0; r < kRows; ++r) {
      int32_t pair;
      std::memcpy(&pair, v + r * ic + k, sizeof pair);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
      for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_dpbf16_ps(acc[r][b], a, weights[b]);
    }
    k += 2;
  } while (k < ic);
  for (int r = 0; r < kRows; ++r) {
    for (int b = 0; b < kBlocks; ++b) _mm512_storeu_ps(m + r * kBlockColumns + 16 * b, acc[r][b]);
  }
}

// float32: u [ic][64], fused multiply-adds.
template <bool kPrefetch = false>
TA_AVX512_BF16 inline void Product(const float* v, int64_t ic, const float* u, float* m, const float* next = nullptr) {
  __m512 acc[kRows][kBlocks];
  for (int r = 0; r < kRows; ++r) {
    for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_setzero_ps();
  }
  // (do-while: ic >= 16. A loop that might not run kept the accumulators in memory across it,
  // zeroed there on entry and copied through there on exit: 72 extra vector moves a call.)
  int64_t k = 0;
  do {
    if constexpr (kPrefetch) PrefetchStep(next + k * kBlockColumns);
    __m512 weights[kBlocks];
    for (int b = 0; b < kBlocks; ++b) weights[b] = _mm512_loadu_ps(u + k * kBlockColumns + 16 * b);
    for (int r = 0; r < kRows; ++r) {
      const __m512 a = _mm512_set1_ps(v[r * ic + k]);
      for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_fmadd_ps(a, weights[b], acc[r][b]);
    }
  } while (++k < ic);
  for (int r = 0; r < kRows; ++r) {
    for (int b = 0; b < kBlocks; ++b) _mm512_storeu_ps(m + r * kBlockColumns + 16 * b, acc[r][b]);
  }
}

// The kTiles products of a chunk for the output channels [column, column + kBlockColumns):
// m[xi] = v[xi] x u[xi] for `rows` rows (a multiple of kRows), m[xi] rows kBlockColumns wide.
template <int kTiles, typename T>
TA_AVX512_BF16 void Products(const T* v, const T* u, int64_t ic, int64_t oc, int64_t column, int64_t rows, int64_t stride, float* m) {
  for (int xi = 0; xi < kTiles; ++xi) {
    const T* vx = v + xi * stride * ic;
    const T* ux = u + (xi * oc + column) * ic;  // xi's weights for this block of output channels
    float* mx = m + xi * stride * kBlockColumns;
    for (int64_t r = 0; r < rows; r += kRows) Product(vx + r * ic, ic, ux, mx + r * kBlockColumns);
  }
}

// One row of an output tile, plus what the pixels hold when accumulating, then ReLU, into the
// row's pixels (nullptr: past the image's edge, dropped).
template <int M, typename T>
TA_AVX512_BF16 inline void OutputPixels(const __m512 (&y)[M], T* const (&pixel)[M], int64_t c, bool relu, bool accumulate) {
  const __m512 zero = _mm512_setzero_ps();
  for (int bb = 0; bb < M; ++bb) {
    if (pixel[bb] == nullptr) continue;
    __m512 v = y[bb];
    if (accumulate) v = _mm512_add_ps(v, Load(pixel[bb] + c));
    if (relu) v = _mm512_max_ps(zero, v);  // a NaN stays NaN (vmaxps returns its second operand)
    Store(pixel[bb] + c, v);
  }
}

// Rows [A0, A1) of A^T m A + bias for a 16-channel slice of an F(4x4) tile's products (xi's at
// m + xi * step): those rows of A^T m (OutputF4 down each column, keeping only them, whose
// products alone are loaded), then A along each, into the tile's pixels. Two calls hold 12 of
// A^T m's 24 vectors at a time: the whole of it, with m's 36 beside it, went through the stack.
// The same operations per value as OutputF4 over the whole tile: the same bits.
template <int A0, int A1, typename T>
TA_AVX512_BF16 inline void OutputF4Rows(const float* m, int64_t step, __m512 bias, T* const (&pixel)[4][4], int64_t c, bool relu, bool accumulate) {
  __m512 s[A1 - A0][6];
  for (int j = 0; j < 6; ++j) {
    __m512 mm[6], column[4];
    for (int i = 0; i < 6; ++i) mm[i] = _mm512_loadu_ps(m + (6 * i + j) * step);
    OutputF4(mm, column);
    for (int a = A0; a < A1; ++a) s[a - A0][j] = column[a];
  }
  for (int a = A0; a < A1; ++a) {
    __m512 y[4];
    OutputF4(s[a - A0], y);
    for (int bb = 0; bb < 4; ++bb) y[bb] = _mm512_add_ps(y[bb], bias);
    OutputPixels<4>(y, pixel[a], c, relu, accumulate);
  }
}

// A^T m A for tiles [first, first + count) and the output channels [column, column +
// kBlockColumns) (m as Products leaves it), plus bias (and what out holds, when accumulate), ReLU,
// into out (channels-last, oc channels; bfloat16 rounded once; a tile's rows and columns past the
// image's edge are dropped).
template <typename T, int M>
TA_AVX512_BF16 void TransformOutput(const float* m, int64_t stride, const TileGrid& grid, int64_t first, int64_t count, const float* bias, bool relu,
                                    bool accumulate, int64_t oc, int64_t column, T* out) {
  constexpr int kIn = Form<M>::kIn;
  for (int64_t r = 0; r < count; ++r) {
    T* pixel[M][M];
    grid.Pixels<M>(first + r, out + column, oc, pixel);
    for (int64_t c = 0; c < kBlockColumns; c += 16) {
      const float* mc = m + r * kBlockColumns + c;  // xi's value at mc + xi * step
      const int64_t step = stride * kBlockColumns;
      const __m512 b = _mm512_loadu_ps(bias + column + c);
      if constexpr (M == 2) {
        __m512 mm[kIn][kIn], s[M][kIn], y[M][M];
        for (int xi = 0; xi < kIn * kIn; ++xi) mm[xi / kIn][xi % kIn] = _mm512_loadu_ps(mc + xi * step);
        for (int j = 0; j < 4; ++j) {  // A^T m
          s[0][j] = _mm512_add_ps(_mm512_add_ps(mm[0][j], mm[1][j]), mm[2][j]);
          s[1][j] = _mm512_sub_ps(_mm512_sub_ps(mm[1][j], mm[2][j]), mm[3][j]);
        }
        for (int a = 0; a < 2; ++a) {  // (A^T m) A
          y[a][0] = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[a][0], s[a][1]), s[a][2]), b);
          y[a][1] = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[a][1], s[a][2]), s[a][3]), b);
        }
        for (int a = 0; a < M; ++a) OutputPixels<M>(y[a], pixel[a], c, relu, accumulate);
      } else {
        static_assert(M == 4);
        OutputF4Rows<0, 2>(mc, step, b, pixel, c, relu, accumulate);  // rows 0-1 take m's rows 0-4
        OutputF4Rows<2, 4>(mc, step, b, pixel, c, relu, accumulate);  // rows 2-3 take 1-5
      }
    }
  }
}

// A convolution's operands, as the schedules below read them.
template <typename T, int M>
struct Operands {
  Operands(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& bias, bool relu, bool accumulate, torch::Tensor& out)
      : ic(x.size(1)),
        oc(out.size(1)),
        grid(x.size(2), x.size(3), M),
        tiles(x.size(0) * grid.per_image),
        x(static_cast<const T*>(x.data_ptr())),
        u(static_cast<const T*>(u.data_ptr())),
        bias(bias.data_ptr<float>()),
        out(static_cast<T*>(out.data_ptr())),
        relu(relu),
        accumulate(accumulate) {}
  int64_t ic, oc;
  TileGrid grid;
  int64_t tiles;
  const T* x;
  const T* u;
  const float* bias;
  T* out;
  bool relu, accumulate;
};

// Tiles rounded up to whole steps of the product (kRows).
inline int64_t RoundToRows(int64_t tiles) { return (tiles + kRows - 1) / kRows * kRows; }

// f(i) for the items [0, n), the team's threads sharing them: one contiguous range of items a
// thread, which it takes from the front, and a thread done with its own range takes the others'
// items from their back. When the threads run at one speed this is the even split (each thread
// finds the tiles it wrote in the previous convolution in its own cache); when one runs slower (its
// core taken by the event loop or another process, or a host core it shares with another guest)
// the other finishes its last items instead of waiting for it at the end of the region. Which
// thread runs an item never changes what the item computes.
template <typename F>
void ParallelSharing(int64_t n, const F& f) {
  TORCH_CHECK(n >= 0 && n <= int64_t{0xffffffff}, "ParallelSharing: ", n, " items (at most 2^32 - 1)");
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n));
  struct alignas(64) Range {
    std::atomic<uint64_t> bounds;  // front << 32 | back: the range's items not yet taken
  };
  std::vector<Range> ranges(threads);
  for (int64_t t = 0; t < threads; ++t) ranges[t].bounds = static_cast<uint64_t>(t * n / threads) << 32 | static_cast<uint64_t>((t + 1) * n / threads);
  const auto take = [](Range& r, bool front) -> int64_t {
    uint64_t old = r.bounds.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t first = old >> 32, last = old & 0xffffffffu;
      if (first >= last) return -1;
      if (r.bounds.compare_exchange_weak(old, front ? old + (uint64_t{1} << 32) : old - 1, std::memory_order_relaxed)) {
        return static_cast<int64_t>(front ? first : last - 1);
      }
    }
  };
  // One index a thread (fewer threads than ranges, as in a nested region, take several in turn).
  at::parallel_for(0, threads, 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t i; (i = take(ranges[t], true)) >= 0;) f(i);
    }
    for (int64_t k = 1; k < threads; ++k) {
      auto& other = ranges[(begin + k) % threads];
      for (int64_t i; (i = take(other, false)) >= 0;) f(i);
    }
  });
}

// The chunked schedule: chunks of tiles, one per thread at a time, each through every block of
// the transformed weights.
template <typename T, int M>
void RunChunked(const Operands<T, M>& c) {
  constexpr int kTiles = Form<M>::kTiles;
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  // A tile's transformed input (every input channel) and its products for one block of output
  // channels: a chunk's tiles go through the transformed weights a block at a time, so the fewer
  // and larger the chunks, the fewer times the weights (16/9 of the plain ones) are read.
  const int64_t per_tile = kTiles * (c.ic * static_cast<int64_t>(sizeof(T)) + kBlockColumns * static_cast<int64_t>(sizeof(float)));
  const int64_t most = std::max<int64_t>(kRows, kChunkBytes / per_tile / kRows * kRows);
  // As many chunks for every thread, as few as the cache allows.
  const int64_t rounds = (c.tiles + threads * most - 1) / (threads * most);
  const int64_t chunks = std::min(c.tiles, threads * rounds);
  const int64_t capacity = RoundToRows((c.tiles + chunks - 1) / chunks);
  ParallelSharing(chunks, [&](int64_t chunk) {
    const int64_t first = chunk * capacity, count = std::min(capacity, c.tiles - first);
    if (count <= 0) return;
    // Each thread's buffers, kept (at most kChunkBytes, or kRows tiles' worth): rows past a
    // chunk's count hold what an earlier chunk left, multiplied but never read back.
    thread_local Buffer<T> v;
    thread_local Buffer<float> m;
    if (v.size() < static_cast<size_t>(kTiles * capacity * c.ic)) v.resize(kTiles * capacity * c.ic);
    if (m.size() < static_cast<size_t>(kTiles * capacity * kBlockColumns)) m.resize(kTiles * capacity * kBlockColumns);
    TransformInput<T, M>(c.x, c.grid, c.ic, first, count, capacity, v.data());
    for (int64_t column = 0; column < c.oc; column += kBlockColumns) {
      Products<kTiles>(v.data(), c.u, c.ic, c.oc, column, RoundToRows(count), capacity, m.data());
      TransformOutput<T, M>(m.data(), capacity, c.grid, first, count, c.bias, c.relu, c.accumulate, c.oc, column, c.out);
    }
  });
}

// The weights-stationary schedule (winograd.h, WinogradF4Stationary), for convolutions of few
// tiles and large weights: a group of tiles at a time (all of them when their transformed input
// and products fit kStationaryGroupBytes), first their transformed input (parallel over tiles),
// then the products a block of output channels and transformed position at a time (parallel over
// those pairs: each block of weights passes through the cache once a group, where the chunked
// schedule reads them all for every chunk of six tiles), then the output transforms (parallel over
// blocks and tiles). Each output is the same sum as the chunked schedule's, in the same order. v
// and m are the calling thread's, kept (at most kStationaryGroupBytes, or kRows tiles' worth).
constexpr int64_t kStationaryGroupBytes = 16 << 20;

template <typename T, int M>
void RunStationary(const Operands<T, M>& c) {
  constexpr int kTiles = Form<M>::kTiles;
  const int64_t per_tile = kTiles * (c.ic * static_cast<int64_t>(sizeof(T)) + c.oc * static_cast<int64_t>(sizeof(float)));
  const int64_t most = std::max<int64_t>(kRows, kStationaryGroupBytes / per_tile / kRows * kRows);
  const int64_t rows = std::min(most, RoundToRows(c.tiles));  // a group's rows
  const int64_t blocks = c.oc / kBlockColumns;
  // (Through pointers: inside the parallel regions a thread_local names the running thread's own.)
  thread_local Buffer<T> v_kept;
  thread_local Buffer<float> m_kept;
  if (v_kept.size() < static_cast<size_t>(kTiles * rows * c.ic)) v_kept.resize(kTiles * rows * c.ic);
  if (m_kept.size() < static_cast<size_t>(kTiles * rows * c.oc)) m_kept.resize(kTiles * rows * c.oc);
  T* v = v_kept.data();  // v[xi][row][ic]
  float* m = m_kept.data();  // m[block][xi][row][64]: each block as TransformOutput reads a chunk's
  for (int64_t first = 0; first < c.tiles; first += rows) {
    const int64_t count = std::min(rows, c.tiles - first);
    at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) { TransformInput<T, M>(c.x, c.grid, c.ic, first + begin, end - begin, rows, v + begin * c.ic); });
    // xi's weights for a block of output channels: a task's, read from memory by its first rows'
    // product unless prefetched, from L2 by the others.
    const auto weights = [&](int64_t task) { return c.u + ((task % kTiles) * c.oc + task / kTiles * kBlockColumns) * c.ic; };
    const int64_t tasks = blocks * kTiles;
    ParallelSharing(tasks, [&](int64_t task) {
      const int64_t block = task / kTiles, xi = task % kTiles;
      const T* vx = v + xi * rows * c.ic;
      const T* ux = weights(task);
      float* mx = m + (block * kTiles + xi) * rows * kBlockColumns;
      // The first kRows rows' product fetches the next task's weights meanwhile (usually the
      // thread's own next; at the end of its range, or while it takes another's tasks from their
      // back, one that another thread runs or has run), so that they come from L2 rather than
      // memory (layer4 at batch 30-32: 5-13% less time for the products on two threads in a C++
      // harness; in the chunked schedule, whose weights come from L3, the same prefetch lost time).
      if (task + 1 < tasks) {
        Product<true>(vx, c.ic, ux, mx, weights(task + 1));
      } else {
        Product(vx, c.ic, ux, mx);
      }
      for (int64_t r = kRows; r < RoundToRows(count); r += kRows) Product(vx + r * c.ic, c.ic, ux, mx + r * kBlockColumns);
    });
    at::parallel_for(0, blocks * count, 1, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end;) {  // runs of tiles within one block
        const int64_t block = item / count, row = item % count, run = std::min(end - item, count - row);
        TransformOutput<T, M>(m + (block * kTiles * rows + row) * kBlockColumns, rows, c.grid, first + row, run, c.bias, c.relu, c.accumulate, c.oc,
                              block * kBlockColumns, c.out);
        item += run;
      }
    });
  }
}

template <typename T, int M>
void Run(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& bias, bool relu, bool accumulate, torch::Tensor& out, bool stationary) {
  const Operands<T, M> c(x, u, bias, relu, accumulate, out);
  if (c.tiles == 0) return;  // an empty batch or image: nothing to compute (and no chunk to divide it into)
  if (stationary) {
    RunStationary(c);
  } else {
    RunChunked(c);
  }
}

}  // namespace

bool WinogradSupported(at::ScalarType dtype) {
  static const bool bf16 = runtime::CpuHasAvx512BwVl() && __builtin_cpu_supports("avx512bf16");
  if (dtype == at::kBFloat16) return bf16;
  return dtype == at::kFloat && runtime::CpuHasAvx512BwVl();
}

bool WinogradFits(int64_t in_channels, int64_t out_channels) {
  return in_channels > 0 && out_channels > 0 && in_channels % 16 == 0 && out_channels % (16 * kBlocks) == 0;
}

int64_t WinogradTileCount(int64_t n, int64_t h, int64_t w, int m) { return n * TileGrid(h, w, m).per_image; }

bool WinogradPays(at::ScalarType dtype, int64_t n, int64_t h, int64_t w) {
  return WinogradTileCount(n, h, w, 2) >= (dtype == at::kBFloat16 ? kWinogradBf16MinTiles : kWinogradF2Fp32MinTiles);
}

bool WinogradF4Pays(at::ScalarType dtype, int64_t n, int64_t h, int64_t w, int64_t in_channels, int64_t out_channels) {
  if (dtype != at::kFloat) return false;
  const int64_t tiles = n * TileGrid(h, w, 4).per_image;
  if (WinogradF4Stationary(in_channels, out_channels)) return tiles >= kWinogradF4StationaryMinTiles;
  return tiles >= kWinogradF4Fp32MinTiles || (tiles >= kWinogradF4Fp32WideMinTiles && in_channels >= kWinogradF4Fp32WideChannels);
}

bool WinogradF4Stationary(int64_t in_channels, int64_t out_channels) {
  return WinogradWeightBytes(at::kFloat, in_channels, out_channels, 4) > kWinogradF4MaxChunkedWeightBytes;
}

int64_t WinogradWeightBytes(at::ScalarType dtype, int64_t in_channels, int64_t out_channels, int tile) {
  return (tile + 2) * (tile + 2) * in_channels * out_channels * static_cast<int64_t>(c10::elementSize(dtype));
}

namespace {

// G of F(M x M, 3 x 3) (Lavin's points: 0, +-1 for M = 2; 0, +-1, +-2 for M = 4).
constexpr double kG2[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
constexpr double kG4[6][3] = {{1. / 4, 0, 0},          {-1. / 6, -1. / 6, -1. / 6}, {-1. / 6, 1. / 6, -1. / 6},
                              {1. / 24, 1. / 12, 1. / 6}, {1. / 24, -1. / 12, 1. / 6}, {0, 0, 1}};

template <int M>
constexpr const double (&GOf())[M + 2][3] {
  if constexpr (M == 2) {
    return kG2;
  } else {
    return kG4;
  }
}

inline double Value(const float* p) { return *p; }
inline double Value(const c10::BFloat16* p) { return static_cast<float>(*p); }

// U = G g G^T for every (output, input) channel pair of `weight` (any strides: a transposed view
// is read in place), in float64, rounded once into u's layout [(M + 2)^2][OC / 64]
// [IC / pair][64][pair]. Parallel over blocks of 64 output channels and input channels.
template <int M, typename T>
void TransformWeights(const torch::Tensor& weight, torch::Tensor& u, int pair) {
  constexpr int kIn = M + 2;
  const double(&g)[kIn][3] = GOf<M>();
  const int64_t oc = weight.size(0), ic = weight.size(1);
  const int64_t s0 = weight.stride(0), s1 = weight.stride(1), s2 = weight.stride(2), s3 = weight.stride(3);
  const T* w = weight.data_ptr<T>();
  T* out = u.data_ptr<T>();
  const int64_t blocks = oc / kBlockColumns, pos_stride = blocks * ic * kBlockColumns;
  at::parallel_for(0, blocks * ic, 1, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t ob = item / ic, i = item % ic;
      T* base = out + ob * ic * kBlockColumns + (i / pair) * kBlockColumns * pair + i % pair;
      for (int64_t j = 0; j < kBlockColumns; ++j) {
        const T* src = w + (ob * kBlockColumns + j) * s0 + i * s1;
        double k[3][3];
        for (int r = 0; r < 3; ++r) {
          for (int c = 0; c < 3; ++c) k[r][c] = Value(src + r * s2 + c * s3);
        }
        double t[kIn][3];  // G g
        for (int a = 0; a < kIn; ++a) {
          for (int c = 0; c < 3; ++c) t[a][c] = g[a][0] * k[0][c] + g[a][1] * k[1][c] + g[a][2] * k[2][c];
        }
        for (int a = 0; a < kIn; ++a) {
          for (int b = 0; b < kIn; ++b) {
            const double v = t[a][0] * g[b][0] + t[a][1] * g[b][1] + t[a][2] * g[b][2];  // (G g) G^T
            base[(a * kIn + b) * pos_stride + j * pair] = static_cast<T>(v);
          }
        }
      }
    }
  });
}

// The weight's gradient (winograd.h): the adjoint of each step of the forward pass, in reverse.
// The output transform y = A^T m A gives dm = A dy A^T, a tile of the output's gradient (rows and
// columns past the image's edge zero: the forward pass dropped them); the products m[xi] =
// v[xi] x u[xi] give du[xi] = v[xi]^T x dm[xi], summed over every tile; the weight transform
// u = G g G^T gives dg = G^T du G.

// A y for one column (or row) of an F(2x2, 3x3) output tile's gradient: m0 = y0, m1 = y0 + y1,
// m2 = y0 - y1, m3 = -y1.
TA_AVX512_BF16 inline void GradientF2(const __m512 y[2], __m512 m[4]) {
  m[0] = y[0];
  m[1] = _mm512_add_ps(y[0], y[1]);
  m[2] = _mm512_sub_ps(y[0], y[1]);
  m[3] = _mm512_sub_ps(_mm512_setzero_ps(), y[1]);
}

// F(4x4, 3x3) (OutputF4's adjoint): m0 = y0, m1 = y0 + y1 + y2 + y3, m2 = y0 - y1 + y2 - y3,
// m3 = y0 + 2 y1 + 4 y2 + 8 y3, m4 = y0 - 2 y1 + 4 y2 - 8 y3, m5 = y3.
TA_AVX512_BF16 inline void GradientF4(const __m512 y[4], __m512 m[6]) {
  const __m512 p = _mm512_add_ps(y[0], y[2]), q = _mm512_add_ps(y[1], y[3]);
  const __m512 r = _mm512_fmadd_ps(_mm512_set1_ps(4.f), y[2], y[0]);
  const __m512 s = _mm512_fmadd_ps(_mm512_set1_ps(8.f), y[3], _mm512_mul_ps(_mm512_set1_ps(2.f), y[1]));
  m[0] = y[0];
  m[1] = _mm512_add_ps(p, q);
  m[2] = _mm512_sub_ps(p, q);
  m[3] = _mm512_add_ps(r, s);
  m[4] = _mm512_sub_ps(r, s);
  m[5] = y[3];
}

// A y for F(M x M, 3 x 3): GradientF2 or GradientF4.
template <int M>
TA_AVX512_BF16 inline void GradientColumn(const __m512 y[M], __m512 m[M + 2]) {
  if constexpr (M == 2) {
    GradientF2(y, m);
  } else {
    GradientF4(y, m);
  }
}

// dm = A dy A^T for tiles [first, first + count) of the output's gradient g (channels-last, oc
// channels): dm[xi][row][channel], xi = kIn i + j, rows `stride` apart per xi (TransformInput's
// layout, oc wide).
template <int M>
TA_AVX512_BF16 void TransformGradient(const float* g, const TileGrid& grid, int64_t oc, int64_t first, int64_t count, int64_t stride, float* dm) {
  constexpr int kIn = Form<M>::kIn;
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t r = 0; r < count; ++r) {
    const float* pixel[M][M];
    grid.Pixels<M>(first + r, g, oc, pixel);
    for (int64_t c = 0; c < oc; c += 16) {
      __m512 y[M][M], t[kIn][M];
      for (int a = 0; a < M; ++a) {
        for (int b = 0; b < M; ++b) y[a][b] = pixel[a][b] != nullptr ? _mm512_loadu_ps(pixel[a][b] + c) : zero;
      }
      EachColumn<GradientColumn<M>>(y, t);  // A dy
      float* out = dm + r * oc + c;
      for (int i = 0; i < kIn; ++i) {  // (A dy) A^T, a row at a time
        __m512 row[kIn];
        GradientColumn<M>(t[i], row);
        for (int j = 0; j < kIn; ++j) _mm512_storeu_ps(out + (kIn * i + j) * stride * oc, row[j]);
      }
    }
  }
}

// du[R rows, 64 columns] += v[count tiles, R input channels]^T x dm[count tiles, 64 output
// channels]: v's rows ic apart, dm's oc, du's oc. R x 4 accumulators of 16 floats.
template <int R>
TA_AVX512_BF16 inline void GradientProduct(const float* v, int64_t ic, const float* dm, int64_t oc, int64_t count, float* du) {
  __m512 acc[R][kBlocks];
  for (int r = 0; r < R; ++r) {
    for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_loadu_ps(du + r * oc + 16 * b);
  }
  int64_t t = 0;
  do {  // count >= 1 (as Product's loop)
    __m512 grads[kBlocks];
    for (int b = 0; b < kBlocks; ++b) grads[b] = _mm512_loadu_ps(dm + t * oc + 16 * b);
    for (int r = 0; r < R; ++r) {
      const __m512 a = _mm512_set1_ps(v[t * ic + r]);
      for (int b = 0; b < kBlocks; ++b) acc[r][b] = _mm512_fmadd_ps(a, grads[b], acc[r][b]);
    }
  } while (++t < count);
  for (int r = 0; r < R; ++r) {
    for (int b = 0; b < kBlocks; ++b) _mm512_storeu_ps(du + r * oc + 16 * b, acc[r][b]);
  }
}

// A chunk's transformed input for one xi and its output gradient for one block of 64 output
// channels (ic + 64 floats a tile): within a core's L2 while the block's du rows pass over them.
// And the whole chunk (every xi, every channel: kTiles x (ic + oc) floats a tile) at most
// kGradientChunkBytes, which bounds the buffers a thread keeps whatever the channel counts.
constexpr int64_t kGradientSliceBytes = 512 << 10;
constexpr int64_t kGradientChunkBytes = 16 << 20;

template <int M>
torch::Tensor WeightGradient(const torch::Tensor& x, const torch::Tensor& grad) {
  constexpr int kIn = Form<M>::kIn, kTiles = Form<M>::kTiles;
  const double(&g)[kIn][3] = GOf<M>();
  const int64_t n = x.size(0), ic = x.size(1), h = x.size(2), w = x.size(3), oc = grad.size(1);
  const TileGrid grid(h, w, M);
  const int64_t tiles = n * grid.per_image;
  auto dw = torch::zeros({oc, ic, 3, 3}, x.options().memory_format(at::MemoryFormat::Contiguous));
  if (tiles == 0) return dw;
  // The tiles a chunk at a time: first the chunk's transforms (parallel over its tiles), then
  // du[xi] += v[xi]^T dm[xi] for every transformed position and block of 64 output channels
  // (parallel over those pairs). Each value of du is one task's, summed over the tiles in order:
  // the result does not depend on the thread count. The buffers are the calling thread's, kept.
  const int64_t bytes = static_cast<int64_t>(sizeof(float));
  const int64_t capacity = std::clamp<int64_t>(std::min(kGradientSliceBytes / ((ic + kBlockColumns) * bytes), kGradientChunkBytes / (kTiles * (ic + oc) * bytes)), 1, tiles);
  const int64_t blocks = oc / kBlockColumns;
  // (Through pointers: inside the parallel regions a thread_local names the running thread's own.)
  thread_local Buffer<float> v_kept, dm_kept, du_kept;
  v_kept.resize(std::max(v_kept.size(), static_cast<size_t>(kTiles * capacity * ic)));
  dm_kept.resize(std::max(dm_kept.size(), static_cast<size_t>(kTiles * capacity * oc)));
  du_kept.assign(kTiles * ic * oc, 0.f);
  float* v = v_kept.data();
  float* dm = dm_kept.data();
  float* du = du_kept.data();
  const float* xs = x.data_ptr<float>();
  const float* gs = grad.data_ptr<float>();
  for (int64_t first = 0; first < tiles; first += capacity) {
    const int64_t count = std::min(capacity, tiles - first);
    at::parallel_for(0, count, 16, [&](int64_t begin, int64_t end) {
      TransformInput<float, M>(xs, grid, ic, first + begin, end - begin, capacity, v + begin * ic);
      TransformGradient<M>(gs, grid, oc, first + begin, end - begin, capacity, dm + begin * oc);
    });
    at::parallel_for(0, kTiles * blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t task = begin; task < end; ++task) {
        const int64_t xi = task / blocks, column = task % blocks * kBlockColumns;
        const float* vx = v + xi * capacity * ic;
        const float* mx = dm + xi * capacity * oc + column;
        float* ux = du + xi * ic * oc + column;
        int64_t row = 0;
        for (; row + kRows <= ic; row += kRows) GradientProduct<kRows>(vx + row, ic, mx, oc, count, ux + row * oc);
        // ic is a multiple of 16: 4 or 2 rows remain, or none.
        for (; row + 2 <= ic; row += 2) GradientProduct<2>(vx + row, ic, mx, oc, count, ux + row * oc);
      }
    });
  }
  // dg = G^T du G per (output, input) channel pair, in float64; an input channel at a time, its du
  // rows (every output channel) read in order.
  float* out = dw.data_ptr<float>();
  at::parallel_for(0, ic, 4, [&](int64_t begin, int64_t end) {
    std::vector<double> d(kTiles * oc);
    for (int64_t i = begin; i < end; ++i) {
      for (int xi = 0; xi < kTiles; ++xi) {
        const float* row = du + (xi * ic + i) * oc;
        for (int64_t o = 0; o < oc; ++o) d[xi * oc + o] = row[o];
      }
      for (int64_t o = 0; o < oc; ++o) {
        double t[3][kIn];  // G^T du
        for (int r = 0; r < 3; ++r) {
          for (int b = 0; b < kIn; ++b) {
            double s = 0;
            for (int a = 0; a < kIn; ++a) s += g[a][r] * d[(a * kIn + b) * oc + o];
            t[r][b] = s;
          }
        }
        for (int r = 0; r < 3; ++r) {
          for (int c = 0; c < 3; ++c) {
            double s = 0;
            for (int b = 0; b < kIn; ++b) s += t[r][b] * g[b][c];  // (G^T du) G
            out[(o * ic + i) * 9 + r * 3 + c] = static_cast<float>(s);
          }
        }
      }
    }
  });
  return dw;
}

}  // namespace

torch::Tensor WinogradWeights(const torch::Tensor& weight, int tile) {
  TORCH_CHECK(weight.dim() == 4 && weight.size(2) == 3 && weight.size(3) == 3 && WinogradFits(weight.size(1), weight.size(0)) &&
                  (weight.scalar_type() == at::kFloat || (weight.scalar_type() == at::kBFloat16 && tile == 2)) && (tile == 2 || tile == 4) &&
                  weight.device().is_cpu(),
              "WinogradWeights: a float32 (F(2x2) or F(4x4)) or bfloat16 (F(2x2)) 3 x 3 weight, input channels in multiples of 16, output channels in multiples of 64");
  const int64_t oc = weight.size(0), ic = weight.size(1);
  const int pair = weight.scalar_type() == at::kBFloat16 ? 2 : 1;  // input channels a dot product takes together
  auto u = torch::empty({(tile + 2) * (tile + 2), oc / kBlockColumns, ic / pair, kBlockColumns, pair}, weight.options().memory_format(at::MemoryFormat::Contiguous));
  if (weight.scalar_type() == at::kBFloat16) {
    TransformWeights<2, c10::BFloat16>(weight, u, pair);
  } else if (tile == 2) {
    TransformWeights<2, float>(weight, u, pair);
  } else {
    TransformWeights<4, float>(weight, u, pair);
  }
  return u;
}

int WinogradTile(const torch::Tensor& u) {
  if (!u.defined() || u.dim() != 5) return 0;
  return u.size(0) == Form<2>::kTiles ? 2 : u.size(0) == Form<4>::kTiles ? 4 : 0;
}

void RunWinograd(const torch::Tensor& x, const torch::Tensor& u, const torch::Tensor& bias, bool relu, bool accumulate, torch::Tensor& out) {
  const int64_t n = x.size(0), ic = x.size(1), h = x.size(2), w = x.size(3), oc = out.size(1);
  const auto dtype = x.scalar_type();
  const int tile = WinogradTile(u);
  TORCH_CHECK((dtype == at::kFloat || dtype == at::kBFloat16) && WinogradSupported(dtype) && x.device().is_cpu() && u.device().is_cpu() &&
                  bias.device().is_cpu() && out.device().is_cpu() && u.scalar_type() == dtype && out.scalar_type() == dtype &&
                  bias.scalar_type() == at::kFloat && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                  out.is_contiguous(at::MemoryFormat::ChannelsLast) && bias.is_contiguous() && u.is_contiguous() &&
                  (tile == 2 || (tile == 4 && dtype == at::kFloat)) && u.numel() == (tile + 2) * (tile + 2) * ic * oc && out.size(0) == n &&
                  out.size(2) == h && out.size(3) == w && bias.numel() == oc && WinogradFits(ic, oc),
              "RunWinograd: an input unlike the one the convolution was prepared for");
  if (dtype == at::kBFloat16) {
    Run<uint16_t, 2>(x, u, bias, relu, accumulate, out, false);
  } else if (tile == 2) {
    Run<float, 2>(x, u, bias, relu, accumulate, out, false);
  } else {
    Run<float, 4>(x, u, bias, relu, accumulate, out, WinogradF4Stationary(ic, oc));
  }
}

torch::Tensor WinogradWeightGradient(const torch::Tensor& x, const torch::Tensor& grad, int tile) {
  TORCH_CHECK(x.dim() == 4 && grad.dim() == 4 && x.scalar_type() == at::kFloat && grad.scalar_type() == at::kFloat && WinogradSupported(at::kFloat) &&
                  x.device().is_cpu() && grad.device().is_cpu() && x.is_contiguous(at::MemoryFormat::ChannelsLast) &&
                  grad.is_contiguous(at::MemoryFormat::ChannelsLast) && grad.size(0) == x.size(0) && grad.size(2) == x.size(2) &&
                  grad.size(3) == x.size(3) && WinogradFits(x.size(1), grad.size(1)) && (tile == 2 || tile == 4),
              "WinogradWeightGradient: float32 channels-last x and gradient of one batch and size, channels the kernel fits, tile 2 or 4");
  return tile == 2 ? WeightGradient<2>(x, grad) : WeightGradient<4>(x, grad);
}

}  // namespace torch_attn::models
