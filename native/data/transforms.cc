#include "data/transforms.h"

#include <algorithm>
#include <array>
#include <optional>
#include <cmath>
#include <functional>
#include <numeric>

#include "common/errors.h"

namespace torch_attn::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// The per-pixel colour kernels are also built for AVX2 (picked at load time on CPUs that have
// it). AVX2 alone, without FMA, so every product and sum is rounded as torchvision's are.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TORCH_ATTN_PIXEL_KERNEL __attribute__((target_clones("avx2", "default")))
#else
#define TORCH_ATTN_PIXEL_KERNEL
#endif

uint8_t Clamp255(float v) {
  // torchvision: .clamp(0, 255).to(uint8), a truncating cast.
  v = std::min(std::max(v, 0.0f), 255.0f);
  return static_cast<uint8_t>(v);
}

std::string Fmt(double v) {
  std::string s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// Maps a coordinate outside [0, n) back into it, for the non-constant padding modes.
int64_t PadIndex(int64_t p, int64_t n, PadMode mode) {
  if (p >= 0 && p < n) return p;
  switch (mode) {
    case PadMode::kEdge: return p < 0 ? 0 : n - 1;
    case PadMode::kReflect: return p < 0 ? -p : 2 * (n - 1) - p;
    case PadMode::kSymmetric: return p < 0 ? -p - 1 : 2 * n - 1 - p;
    default: return -1;
  }
}

// A per-channel parameter (fill, mean, std) holds one value for every channel or one for all;
// anything else is refused before any pixel is touched (an image with more channels than
// values would otherwise read past them).
void CheckPerChannel(const std::vector<double>& values, int64_t channels, const char* what, bool may_be_empty) {
  const auto n = static_cast<int64_t>(values.size());
  if ((n == 0 && may_be_empty) || n == 1 || n == channels) return;
  throw RangeError(std::string(what) + " has " + std::to_string(n) + " values for a " + std::to_string(channels) +
                   "-channel image (allowed: 1 value, or one per channel)");
}

// The fill of `channel`; CheckPerChannel(fill, ...) has run.
uint8_t FillValue(const std::vector<double>& fill, int64_t channel) {
  if (fill.empty()) return 0;
  double v = fill.size() == 1 ? fill[0] : fill[static_cast<size_t>(channel)];
  return static_cast<uint8_t>(std::min(std::max(v, 0.0), 255.0));
}

// Grayscale as torchvision computes it for uint8: (0.2989 r + 0.587 g + 0.114 b) in float32,
// truncated to uint8.
uint8_t Gray(const uint8_t* px) {
  float l = 0.2989f * static_cast<float>(px[0]) + 0.587f * static_cast<float>(px[1]);
  l = l + 0.114f * static_cast<float>(px[2]);
  return static_cast<uint8_t>(l);
}

// Round half to even (nearbyint in the default rounding mode) without a libm call: adding and
// removing 1.5 * 2^23 leaves the rounded value for |x| < 2^22. Larger values are far outside
// any image anyway.
inline float RoundEven(float x) {
  if (!(std::fabs(x) < 4194304.0f)) return x;
  // Without -ffast-math the compiler keeps both operations (they are not an identity in floats).
  return (x + 12582912.0f) - 12582912.0f;
}

void RequireChannels(const Image& image, const char* what) {
  if (image.channels != 1 && image.channels != 3) {
    throw RangeError(std::string(what) + " works on 1- or 3-channel images, got " + std::to_string(image.channels));
  }
}

// A transform's output size, held to the data path's image limit before anything is allocated: a
// size in a transform (resize 20000, pad 1e6) would otherwise ask a small image for gigabytes.
void CheckOutputSize(int64_t height, int64_t width, const char* op) {
  const int64_t limit = MaxImagePixels();
  if (height > limit / std::max<int64_t>(width, 1)) {
    throw RangeError(std::string(op) + ": the output would be " + std::to_string(height) + " x " + std::to_string(width) + " (" +
                     std::to_string(height * width) + " pixels), more than the " + std::to_string(limit) +
                     " an image may have (twice the image limit, as the decoders hold images; datasets.imageLimits({ maxPixels }) sets it)");
  }
}

Image OutputImage(int64_t height, int64_t width, int64_t channels, const char* op) {
  CheckOutputSize(height, width, op);
  return Image(height, width, channels);
}

}  // namespace

// ---- kernels --------------------------------------------------------------------------------

Image Pad(const Image& in, int64_t left, int64_t top, int64_t right, int64_t bottom, PadMode mode,
          const std::vector<double>& fill) {
  if (mode == PadMode::kReflect && (std::max(left, right) >= in.width || std::max(top, bottom) >= in.height)) {
    throw RangeError("pad: reflect padding must be smaller than the image (" + std::to_string(in.height) + "x" +
                     std::to_string(in.width) + ")");
  }
  if (mode == PadMode::kSymmetric && (std::max(left, right) > in.width || std::max(top, bottom) > in.height)) {
    throw RangeError("pad: symmetric padding must not exceed the image size (" + std::to_string(in.height) + "x" +
                     std::to_string(in.width) + ")");
  }
  const int64_t c = in.channels;
  CheckPerChannel(fill, c, "pad: fill", true);
  Image out = OutputImage(in.height + top + bottom, in.width + left + right, c, "pad");
  if (mode == PadMode::kConstant) {
    // Fill the border, copy the rows.
    uint8_t value[4] = {0, 0, 0, 0};
    for (int64_t k = 0; k < c && k < 4; ++k) value[k] = FillValue(fill, k);
    if (c <= 4 && (c == 1 || std::equal(value + 1, value + c, value))) {
      std::fill(out.pixels.begin(), out.pixels.end(), value[0]);
    } else {
      for (int64_t i = 0; i < out.height * out.width; ++i) {
        for (int64_t k = 0; k < c; ++k) out.pixels[static_cast<size_t>(i * c + k)] = k < 4 ? value[k] : FillValue(fill, k);
      }
    }
    for (int64_t y = 0; y < in.height; ++y) std::copy(in.row(y), in.row(y) + in.width * c, out.row(y + top) + left * c);
    return out;
  }
  for (int64_t y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    const int64_t sy = mode == PadMode::kConstant ? y - top : PadIndex(y - top, in.height, mode);
    for (int64_t x = 0; x < out.width; ++x) {
      const int64_t sx = mode == PadMode::kConstant ? x - left : PadIndex(x - left, in.width, mode);
      const bool inside = sy >= 0 && sy < in.height && sx >= 0 && sx < in.width;
      for (int64_t k = 0; k < c; ++k) {
        dst[x * c + k] = inside ? in.row(sy)[sx * c + k] : FillValue(fill, k);
      }
    }
  }
  return out;
}

Image Crop(const Image& in, int64_t top, int64_t left, int64_t height, int64_t width) {
  // Like torchvision's crop: parts outside the image are zero.
  const int64_t c = in.channels;
  Image out = OutputImage(height, width, c, "crop");
  if (top >= 0 && left >= 0 && top + height <= in.height && left + width <= in.width) {
    for (int64_t y = 0; y < height; ++y) std::copy(in.row(top + y) + left * c, in.row(top + y) + (left + width) * c, out.row(y));
    return out;
  }
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = top + y;
    uint8_t* dst = out.row(y);
    if (sy < 0 || sy >= in.height) {
      std::fill(dst, dst + width * c, 0);
      continue;
    }
    for (int64_t x = 0; x < width; ++x) {
      const int64_t sx = left + x;
      if (sx < 0 || sx >= in.width) {
        std::fill(dst + x * c, dst + (x + 1) * c, 0);
      } else {
        std::copy(in.row(sy) + sx * c, in.row(sy) + (sx + 1) * c, dst + x * c);
      }
    }
  }
  return out;
}

namespace {

// Antialiased bilinear weights along one axis (PIL's and LibTorch's _upsample_bilinear2d_aa):
// a triangle filter widened by the scale when shrinking.
struct AxisWeights {
  std::vector<int64_t> start, count;
  std::vector<float> weights;  // count-many per output, at offset index * max_taps
  int64_t max_taps = 0;
};

AxisWeights ComputeWeights(int64_t in_size, int64_t out_size) {
  AxisWeights a;
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const float support = scale >= 1.0f ? scale : 1.0f;
  const float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
  a.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  a.start.resize(out_size);
  a.count.resize(out_size);
  a.weights.assign(static_cast<size_t>(out_size * a.max_taps), 0.0f);
  for (int64_t i = 0; i < out_size; ++i) {
    const float center = scale * (static_cast<float>(i) + 0.5f);
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5f), 0);
    const int64_t hi = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5f), in_size);
    const int64_t n = std::min(hi - lo, a.max_taps);
    float total = 0;
    float* w = a.weights.data() + i * a.max_taps;
    for (int64_t j = 0; j < n; ++j) {
      const float x = (static_cast<float>(j + lo) - center + 0.5f) * invscale;
      w[j] = std::max(0.0f, 1.0f - std::abs(x));
      total += w[j];
    }
    if (total > 0) {
      for (int64_t j = 0; j < n; ++j) w[j] /= total;
    }
    a.start[i] = lo;
    a.count[i] = n;
  }
  return a;
}

}  // namespace

Image Resize(const Image& in, int64_t height, int64_t width) {
  if (height < 1 || width < 1) throw RangeError("resize: the output size must be at least 1x1");
  if (height == in.height && width == in.width) return in;
  const int64_t c = in.channels;
  CheckOutputSize(height, width, "resize");
  // Rows first (height), then columns, in float; rounded once at the end. The rows' result (the
  // output's height, the input's width) is held to the same limit, before either is allocated.
  if (height > MaxImagePixels() / in.width) {
    throw RangeError("resize: resizing " + std::to_string(in.height) + " x " + std::to_string(in.width) + " to " + std::to_string(height) +
                     " x " + std::to_string(width) + " passes through " + std::to_string(height) + " x " + std::to_string(in.width) +
                     " pixels, more than the " + std::to_string(MaxImagePixels()) + " an image may have");
  }
  Image out(height, width, c);
  const AxisWeights wy = ComputeWeights(in.height, height);
  const AxisWeights wx = ComputeWeights(in.width, width);
  std::vector<float> mid(static_cast<size_t>(height * in.width * c));
  for (int64_t y = 0; y < height; ++y) {
    const float* w = wy.weights.data() + y * wy.max_taps;
    float* dst = mid.data() + y * in.width * c;
    for (int64_t j = 0; j < wy.count[y]; ++j) {
      const uint8_t* src = in.row(wy.start[y] + j);
      for (int64_t k = 0; k < in.width * c; ++k) dst[k] += w[j] * static_cast<float>(src[k]);
    }
  }
  for (int64_t y = 0; y < height; ++y) {
    const float* src = mid.data() + y * in.width * c;
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < width; ++x) {
      const float* w = wx.weights.data() + x * wx.max_taps;
      for (int64_t k = 0; k < c; ++k) {
        float acc = 0;
        for (int64_t j = 0; j < wx.count[x]; ++j) acc += w[j] * src[(wx.start[x] + j) * c + k];
        dst[x * c + k] = static_cast<uint8_t>(std::min(std::max(std::nearbyint(acc), 0.0f), 255.0f));
      }
    }
  }
  return out;
}

Image Rotate(const Image& in, double degrees, const std::vector<double>& fill) {
  // torchvision's tensor rotate (no expand, about the centre, nearest): the inverse affine
  // matrix applied to pixel centres, normalised as grid_sample(align_corners=False) does.
  const double rot = -degrees * kPi / 180.0;
  const float m0 = static_cast<float>(std::cos(rot)), m1 = static_cast<float>(std::sin(rot));
  const float m3 = static_cast<float>(-std::sin(rot)), m4 = static_cast<float>(std::cos(rot));
  const int64_t h = in.height, w = in.width, c = in.channels;
  CheckPerChannel(fill, c, "rotate: fill", true);
  const float half_w = static_cast<float>(0.5 * static_cast<double>(w));
  const float half_h = static_cast<float>(0.5 * static_cast<double>(h));
  const float r00 = m0 / half_w, r10 = m1 / half_w, r01 = m3 / half_h, r11 = m4 / half_h;
  const float fw = static_cast<float>(w), fh = static_cast<float>(h);
  Image out(h, w, c);
  for (int64_t y = 0; y < h; ++y) {
    const float by = -fh * 0.5f + 0.5f + static_cast<float>(y);
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < w; ++x) {
      const float bx = -fw * 0.5f + 0.5f + static_cast<float>(x);
      const float gx = bx * r00 + by * r10;
      const float gy = bx * r01 + by * r11;
      const float ix = RoundEven(((gx + 1.0f) * fw - 1.0f) / 2.0f);
      const float iy = RoundEven(((gy + 1.0f) * fh - 1.0f) / 2.0f);
      if (ix >= 0 && ix < fw && iy >= 0 && iy < fh) {
        const uint8_t* src = in.row(static_cast<int64_t>(iy)) + static_cast<int64_t>(ix) * c;
        std::copy(src, src + c, dst + x * c);
      } else {
        for (int64_t k = 0; k < c; ++k) dst[x * c + k] = FillValue(fill, k);
      }
    }
  }
  return out;
}

void FlipHorizontal(Image& image) {
  const int64_t c = image.channels;
  for (int64_t y = 0; y < image.height; ++y) {
    uint8_t* row = image.row(y);
    for (int64_t a = 0, b = image.width - 1; a < b; ++a, --b) {
      std::swap_ranges(row + a * c, row + (a + 1) * c, row + b * c);
    }
  }
}

void FlipVertical(Image& image) {
  const int64_t stride = image.width * image.channels;
  for (int64_t a = 0, b = image.height - 1; a < b; ++a, --b) {
    std::swap_ranges(image.row(a), image.row(a) + stride, image.row(b));
  }
}

// torchvision's _blend: (ratio * img1 + (1 - ratio) * img2).clamp(0, 255).to(uint8), float32.
TORCH_ATTN_PIXEL_KERNEL void AdjustBrightness(Image& image, double factor) {
  const float r = static_cast<float>(factor);
  for (auto& v : image.pixels) v = Clamp255(r * static_cast<float>(v));
}

TORCH_ATTN_PIXEL_KERNEL void AdjustContrast(Image& image, double factor) {
  RequireChannels(image, "adjustContrast");
  const int64_t c = image.channels, n = image.height * image.width;
  double sum = 0;  // integers: exact, as torch's float32 sum is for any image under 65,793 pixels
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* px = image.pixels.data() + i * c;
    sum += c == 3 ? Gray(px) : px[0];
  }
  const float mean = static_cast<float>(sum) / static_cast<float>(n);
  const float r = static_cast<float>(factor), rest = static_cast<float>(1.0 - factor) * mean;
  for (auto& v : image.pixels) v = Clamp255(r * static_cast<float>(v) + rest);
}

TORCH_ATTN_PIXEL_KERNEL void AdjustSaturation(Image& image, double factor) {
  RequireChannels(image, "adjustSaturation");
  if (image.channels == 1) return;  // as torchvision (and PIL): nothing to desaturate
  const float r = static_cast<float>(factor), s = static_cast<float>(1.0 - factor);
  const int64_t n = image.height * image.width;
  constexpr int64_t kChunk = 256;
  float gray[kChunk];
  for (int64_t base = 0; base < n; base += kChunk) {
    const int64_t m = std::min(kChunk, n - base);
    uint8_t* px = image.pixels.data() + base * 3;
    for (int64_t i = 0; i < m; ++i) gray[i] = s * static_cast<float>(Gray(px + 3 * i));
    for (int64_t i = 0; i < m; ++i) {
      for (int k = 0; k < 3; ++k) px[3 * i + k] = Clamp255(r * static_cast<float>(px[3 * i + k]) + gray[i]);
    }
  }
}

TORCH_ATTN_PIXEL_KERNEL void AdjustHue(Image& image, double factor) {
  RequireChannels(image, "adjustHue");
  if (image.channels == 1) return;
  const float hue = static_cast<float>(factor);
  const int64_t n = image.height * image.width;
  // Planar chunks without branches, so the compiler vectorises the arithmetic; every step is
  // torchvision's float32 formula (_rgb2hsv, remainder, _hsv2rgb), ranges known exactly.
  constexpr int64_t kChunk = 256;
  float r[kChunk], g[kChunk], b[kChunk];
  for (int64_t base = 0; base < n; base += kChunk) {
    const int64_t m = std::min(kChunk, n - base);
    uint8_t* px = image.pixels.data() + base * 3;
    for (int64_t i = 0; i < m; ++i) {
      r[i] = static_cast<float>(px[3 * i]) / 255.0f;
      g[i] = static_cast<float>(px[3 * i + 1]) / 255.0f;
      b[i] = static_cast<float>(px[3 * i + 2]) / 255.0f;
    }
    for (int64_t i = 0; i < m; ++i) {
      const float maxc = std::max(std::max(r[i], g[i]), b[i]), minc = std::min(std::min(r[i], g[i]), b[i]);
      const bool eqc = maxc == minc;
      const float cr = maxc - minc;
      const float s = cr / (eqc ? 1.0f : maxc);
      const float crd = eqc ? 1.0f : cr;
      const float rc = (maxc - r[i]) / crd, gc = (maxc - g[i]) / crd, bc = (maxc - b[i]) / crd;
      const float hr = maxc == r[i] ? bc - gc : 0.0f;
      const float hg = (maxc == g[i] && maxc != r[i]) ? (2.0f + rc) - bc : 0.0f;
      const float hb = (maxc != g[i] && maxc != r[i]) ? (4.0f + gc) - rc : 0.0f;
      // fmod(x, 1) for x in [0, 2): x, or x - 1 (exact).
      float h = (hr + hg + hb) / 6.0f + 1.0f;
      h = h >= 1.0f ? h - 1.0f : h;
      // (h + hue) % 1.0 for h + hue in (-0.5, 1.5), as torch.remainder computes it.
      h = h + hue;
      h = h >= 1.0f ? h - 1.0f : h;
      h = h < 0.0f ? h + 1.0f : h;
      const float v = maxc;
      const int sector = static_cast<int>(h * 6.0f);  // floor: h * 6 is in [0, 6)
      const float f = h * 6.0f - static_cast<float>(sector);
      const float p = std::min(std::max(v * (1.0f - s), 0.0f), 1.0f);
      const float q = std::min(std::max(v * (1.0f - s * f), 0.0f), 1.0f);
      const float t = std::min(std::max(v * (1.0f - s * (1.0f - f)), 0.0f), 1.0f);
      // (v, q, p, p, t, v), (t, v, v, q, p, p), (p, p, t, v, v, q) by sector
      r[i] = sector == 0 || sector == 5 ? v : sector == 1 ? q : sector == 4 ? t : p;
      g[i] = sector == 1 || sector == 2 ? v : sector == 0 ? t : sector == 3 ? q : p;
      b[i] = sector == 3 || sector == 4 ? v : sector == 2 ? t : sector == 5 ? q : p;
    }
    for (int64_t i = 0; i < m; ++i) {
      px[3 * i] = static_cast<uint8_t>(r[i] * 255.0f);
      px[3 * i + 1] = static_cast<uint8_t>(g[i] * 255.0f);
      px[3 * i + 2] = static_cast<uint8_t>(b[i] * 255.0f);
    }
  }
}

FloatImage ToTensor(const Image& image) {
  FloatImage out;
  out.channels = image.channels;
  out.height = image.height;
  out.width = image.width;
  const int64_t n = image.height * image.width, c = image.channels;
  out.values.resize(static_cast<size_t>(n * c));
  for (int64_t k = 0; k < c; ++k) {
    float* dst = out.values.data() + k * n;
    const uint8_t* src = image.pixels.data() + k;
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i * c]) / 255.0f;
  }
  return out;
}

void Normalize(FloatImage& image, const std::vector<double>& mean, const std::vector<double>& std) {
  const int64_t n = image.height * image.width;
  CheckPerChannel(mean, image.channels, "normalize: mean", false);
  CheckPerChannel(std, image.channels, "normalize: std", false);
  for (int64_t k = 0; k < image.channels; ++k) {
    const float m = static_cast<float>(mean.size() == 1 ? mean[0] : mean[k]);
    const float s = static_cast<float>(std.size() == 1 ? std[0] : std[k]);
    float* v = image.values.data() + k * n;
    for (int64_t i = 0; i < n; ++i) v[i] = (v[i] - m) / s;
  }
}

// ---- transforms -----------------------------------------------------------------------------

namespace {

// Reads a spec's fields with messages naming the op and the field.
class SpecReader {
 public:
  explicit SpecReader(const TransformSpec& spec) : spec_(spec) {}

  const std::vector<double>* Find(const char* key) const {
    if (spec_.strings.count(key)) throw TypeError(Where(key) + " must be a number or numbers, got a string");
    auto it = spec_.numbers.find(key);
    return it == spec_.numbers.end() ? nullptr : &it->second;
  }
  std::vector<double> List(const char* key, size_t min_len, size_t max_len, std::vector<double> fallback = {}) const {
    const auto* v = Find(key);
    if (!v) {
      if (fallback.empty() && min_len > 0) throw RangeError(Where(key) + " is required");
      return fallback;
    }
    if (v->size() < min_len || v->size() > max_len) {
      throw RangeError(Where(key) + " takes " + (min_len == max_len ? std::to_string(min_len)
                                                                  : std::to_string(min_len) + " to " + std::to_string(max_len)) +
                       " numbers, got " + std::to_string(v->size()));
    }
    for (double x : *v) {
      if (!std::isfinite(x)) throw RangeError(Where(key) + " must be finite numbers");
    }
    return *v;
  }
  double Number(const char* key, double lo, double hi, std::optional<double> fallback = std::nullopt) const {
    const auto* v = Find(key);
    if (!v) {
      if (!fallback) throw RangeError(Where(key) + " is required");
      return *fallback;
    }
    if (v->size() != 1 || !std::isfinite((*v)[0]) || (*v)[0] < lo || (*v)[0] > hi) {
      throw RangeError(Where(key) + " must be a number in [" + Fmt(lo) + ", " + Fmt(hi) + "]");
    }
    return (*v)[0];
  }
  int64_t Int(const char* key, int64_t lo, int64_t hi, std::optional<int64_t> fallback = std::nullopt) const {
    const double v = Number(key, static_cast<double>(lo), static_cast<double>(hi),
                            fallback ? std::optional<double>(static_cast<double>(*fallback)) : std::nullopt);
    if (v != std::floor(v)) throw RangeError(Where(key) + " must be an integer");
    return static_cast<int64_t>(v);
  }
  // [h, w] from one or two positive integers.
  std::pair<int64_t, int64_t> Size(const char* key) const {
    auto v = List(key, 1, 2);
    for (double x : v) {
      if (x < 1 || x > 1e6 || x != std::floor(x)) throw RangeError(Where(key) + " must be positive integers");
    }
    return {static_cast<int64_t>(v[0]), static_cast<int64_t>(v.size() == 2 ? v[1] : v[0])};
  }
  // [left, top, right, bottom] from 1, 2 ([left/right, top/bottom]) or 4 non-negative integers.
  std::vector<int64_t> Padding(const char* key) const {
    auto v = List(key, 1, 4, {0});
    if (v.size() == 3) throw RangeError(Where(key) + " takes 1, 2 or 4 numbers, got 3");
    for (double x : v) {
      if (x < 0 || x > 1e6 || x != std::floor(x)) throw RangeError(Where(key) + " must be non-negative integers");
    }
    auto i = [&](size_t k) { return static_cast<int64_t>(v[k]); };
    if (v.size() == 1) return {i(0), i(0), i(0), i(0)};
    if (v.size() == 2) return {i(0), i(1), i(0), i(1)};
    return {i(0), i(1), i(2), i(3)};
  }
  std::vector<double> Fill() const {
    auto v = List("fill", 1, 3, {0});
    if (v.size() == 2) throw RangeError(Where("fill") + " takes 1 or 3 numbers");
    for (double x : v) {
      if (x < 0 || x > 255) throw RangeError(Where("fill") + " must be in [0, 255]");
    }
    return v;
  }
  PadMode Mode() const {
    auto it = spec_.strings.find("paddingMode");
    const std::string mode = it == spec_.strings.end() ? "constant" : it->second;
    if (mode == "constant") return PadMode::kConstant;
    if (mode == "edge") return PadMode::kEdge;
    if (mode == "reflect") return PadMode::kReflect;
    if (mode == "symmetric") return PadMode::kSymmetric;
    throw RangeError(Where("paddingMode") + " must be 'constant', 'edge', 'reflect' or 'symmetric', got '" + mode + "'");
  }
  // A [lo, hi] range with lo <= hi inside [min, max].
  std::optional<std::pair<double, double>> Range(const char* key, double min, double max) const {
    if (!Find(key)) return std::nullopt;
    auto v = List(key, 2, 2);
    if (v[0] > v[1] || v[0] < min || v[1] > max) {
      throw RangeError(Where(key) + " must be a range [lo, hi] with " + Fmt(min) + " <= lo <= hi <= " + Fmt(max));
    }
    return std::make_pair(v[0], v[1]);
  }
  std::string Where(const char* key) const { return "transforms." + spec_.op + ": " + key; }

 private:
  const TransformSpec& spec_;
};

// An op on the 8-bit image, with its parameters drawn (or fixed) per sample.
class ImageOp : public Transform {
 public:
  using Fn = std::function<void(Image&, Rng&)>;
  explicit ImageOp(Fn fn) : fn_(std::move(fn)) {}
  void Apply(Sample& sample, Rng& rng) const override { fn_(sample.image, rng); }

 private:
  Fn fn_;
};

class ToTensorOp : public Transform {
 public:
  void Apply(Sample& sample, Rng&) const override {
    sample.tensor = ToTensor(sample.image);
    sample.image = Image();
    sample.is_float = true;
  }
  bool GivesFloat() const override { return true; }
};

// torchvision's RandomApply: the wrapped steps in order with probability p (one draw), else none.
class RandomApplyOp : public Transform {
 public:
  RandomApplyOp(double p, std::vector<std::unique_ptr<Transform>> steps) : p_(p), steps_(std::move(steps)) {}
  void Apply(Sample& sample, Rng& rng) const override {
    if (!(rng.Uniform() < p_)) return;
    for (const auto& step : steps_) step->Apply(sample, rng);
  }

 private:
  double p_;
  std::vector<std::unique_ptr<Transform>> steps_;
};

std::unique_ptr<Transform> MakeTransform(const TransformSpec& spec);
std::unique_ptr<Transform> MakeRandomApply(const TransformSpec& spec, const SpecReader& r);

class NormalizeOp : public Transform {
 public:
  NormalizeOp(std::vector<double> mean, std::vector<double> std) : mean_(std::move(mean)), std_(std::move(std)) {}
  void Apply(Sample& sample, Rng&) const override { Normalize(sample.tensor, mean_, std_); }
  bool TakesFloat() const override { return true; }

 private:
  std::vector<double> mean_, std_;
};

int64_t RandInt(Rng& rng, int64_t lo, int64_t hi_exclusive) {
  return lo + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(hi_exclusive - lo)));
}

// torchvision's RandomResizedCrop.get_params.
std::array<int64_t, 4> ResizedCropBox(const Image& img, double smin, double smax, double rmin, double rmax, Rng& rng) {
  const int64_t H = img.height, W = img.width;
  const double area = static_cast<double>(H * W);
  const double lrmin = std::log(rmin), lrmax = std::log(rmax);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.Uniform(smin, smax);
    const double aspect = std::exp(rng.Uniform(lrmin, lrmax));
    const int64_t w = std::llround(std::sqrt(target * aspect));
    const int64_t h = std::llround(std::sqrt(target / aspect));
    if (0 < w && w <= W && 0 < h && h <= H) {
      const int64_t i = RandInt(rng, 0, H - h + 1), j = RandInt(rng, 0, W - w + 1);
      return {i, j, h, w};
    }
  }
  const double in_ratio = static_cast<double>(W) / static_cast<double>(H);
  int64_t w = W, h = H;
  if (in_ratio < rmin) {
    h = std::llround(static_cast<double>(w) / rmin);
  } else if (in_ratio > rmax) {
    w = std::llround(static_cast<double>(h) * rmax);
  }
  return {(H - h) / 2, (W - w) / 2, h, w};
}

// Python's round() (half to even), as centerCrop's offsets use it.
int64_t RoundHalfEven(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

Image CenterCropImage(const Image& in, int64_t th, int64_t tw) {
  CheckOutputSize(th, tw, "centerCrop");
  Image img = in;
  if (tw > img.width || th > img.height) {
    const int64_t l = tw > img.width ? (tw - img.width) / 2 : 0, t = th > img.height ? (th - img.height) / 2 : 0;
    const int64_t r = tw > img.width ? (tw - img.width + 1) / 2 : 0, b = th > img.height ? (th - img.height + 1) / 2 : 0;
    img = Pad(img, l, t, r, b, PadMode::kConstant, {0});
    if (img.width == tw && img.height == th) return img;
  }
  const int64_t top = RoundHalfEven(static_cast<double>(img.height - th) / 2.0);
  const int64_t left = RoundHalfEven(static_cast<double>(img.width - tw) / 2.0);
  return Crop(img, top, left, th, tw);
}

std::unique_ptr<Transform> MakeTransform(const TransformSpec& spec) {
  SpecReader r(spec);
  const std::string& op = spec.op;
  auto image_op = [](ImageOp::Fn fn) { return std::make_unique<ImageOp>(std::move(fn)); };

  if (op == "toTensor") return std::make_unique<ToTensorOp>();
  if (op == "normalize") {
    auto mean = r.List("mean", 1, 4), std = r.List("std", 1, 4);
    if (mean.size() != std.size()) throw RangeError(r.Where("std") + " must have as many values as mean");
    for (double s : std) {
      if (s == 0) throw RangeError(r.Where("std") + " must not contain 0");
    }
    return std::make_unique<NormalizeOp>(mean, std);
  }
  if (op == "pad") {
    auto p = r.Padding("padding");
    auto mode = r.Mode();
    auto fill = r.Fill();
    return image_op([=](Image& img, Rng&) { img = Pad(img, p[0], p[1], p[2], p[3], mode, fill); });
  }
  if (op == "crop") {
    const int64_t top = r.Int("top", -1000000, 1000000), left = r.Int("left", -1000000, 1000000);
    const auto [h, w] = r.Size("size");
    return image_op([=, h = h, w = w](Image& img, Rng&) { img = Crop(img, top, left, h, w); });
  }
  if (op == "centerCrop") {
    const auto [h, w] = r.Size("size");
    return image_op([=, h = h, w = w](Image& img, Rng&) { img = CenterCropImage(img, h, w); });
  }
  if (op == "resize") {
    // size [h, w], or one number: the shorter edge (aspect kept), optionally capped by maxSize.
    auto v = r.List("size", 1, 2);
    const auto [h, w] = r.Size("size");
    const int64_t max_size = r.Int("maxSize", 0, 1000000, 0);
    if (v.size() == 2) return image_op([=, h = h, w = w](Image& img, Rng&) { img = Resize(img, h, w); });
    if (max_size != 0 && max_size <= h) {
      throw RangeError(r.Where("maxSize") + " must be greater than size (" + std::to_string(h) + ")");
    }
    return image_op([=, size = h](Image& img, Rng&) {
      const bool portrait = img.width <= img.height;
      const int64_t shorter = portrait ? img.width : img.height, longer = portrait ? img.height : img.width;
      int64_t new_short = size, new_long = static_cast<int64_t>(static_cast<double>(size) * longer / shorter);
      if (max_size != 0 && new_long > max_size) {
        new_short = static_cast<int64_t>(static_cast<double>(max_size) * new_short / new_long);
        new_long = max_size;
      }
      img = portrait ? Resize(img, new_long, new_short) : Resize(img, new_short, new_long);
    });
  }
  if (op == "hflip") return image_op([](Image& img, Rng&) { FlipHorizontal(img); });
  if (op == "vflip") return image_op([](Image& img, Rng&) { FlipVertical(img); });
  if (op == "rotate") {
    const double angle = r.Number("angle", -1e6, 1e6);
    auto fill = r.Fill();
    return image_op([=](Image& img, Rng&) { img = Rotate(img, angle, fill); });
  }
  if (op == "adjustBrightness" || op == "adjustContrast" || op == "adjustSaturation") {
    const double f = r.Number("factor", 0, 1e6);
    auto fn = op == "adjustBrightness" ? AdjustBrightness : op == "adjustContrast" ? AdjustContrast : AdjustSaturation;
    return image_op([=](Image& img, Rng&) { fn(img, f); });
  }
  if (op == "adjustHue") {
    const double f = r.Number("factor", -0.5, 0.5);
    return image_op([=](Image& img, Rng&) { AdjustHue(img, f); });
  }
  if (op == "randomCrop") {
    const auto [th, tw] = r.Size("size");
    auto p = r.Padding("padding");
    auto mode = r.Mode();
    auto fill = r.Fill();
    const bool pad_if_needed = r.Int("padIfNeeded", 0, 1, 0) == 1;
    return image_op([=, th = th, tw = tw](Image& img, Rng& rng) {
      CheckOutputSize(th, tw, "randomCrop");
      if (p[0] || p[1] || p[2] || p[3]) img = Pad(img, p[0], p[1], p[2], p[3], mode, fill);
      if (pad_if_needed && img.width < tw) img = Pad(img, tw - img.width, 0, tw - img.width, 0, mode, fill);
      if (pad_if_needed && img.height < th) img = Pad(img, 0, th - img.height, 0, th - img.height, mode, fill);
      if (img.height < th || img.width < tw) {
        throw RangeError("transforms.randomCrop: crop size " + std::to_string(th) + "x" + std::to_string(tw) +
                         " is larger than the (padded) image " + std::to_string(img.height) + "x" +
                         std::to_string(img.width) + "; pass padIfNeeded: true or a smaller size");
      }
      if (img.height == th && img.width == tw) return;
      const int64_t i = RandInt(rng, 0, img.height - th + 1), j = RandInt(rng, 0, img.width - tw + 1);
      img = Crop(img, i, j, th, tw);
    });
  }
  if (op == "randomHorizontalFlip" || op == "randomVerticalFlip") {
    const double p = r.Number("p", 0, 1, 0.5);
    const bool horizontal = op == "randomHorizontalFlip";
    return image_op([=](Image& img, Rng& rng) {
      if (rng.Uniform() < p) horizontal ? FlipHorizontal(img) : FlipVertical(img);
    });
  }
  if (op == "colorJitter") {
    auto b = r.Range("brightness", 0, 1e6), c = r.Range("contrast", 0, 1e6), s = r.Range("saturation", 0, 1e6);
    auto h = r.Range("hue", -0.5, 0.5);
    return image_op([=](Image& img, Rng& rng) {
      // torchvision: a random order of the four, then each factor drawn uniformly from its range.
      int order[4] = {0, 1, 2, 3};
      for (int i = 3; i > 0; --i) std::swap(order[i], order[rng.Below(static_cast<uint64_t>(i + 1))]);
      const double fb = b ? rng.Uniform(b->first, b->second) : 0, fc = c ? rng.Uniform(c->first, c->second) : 0;
      const double fs = s ? rng.Uniform(s->first, s->second) : 0, fh = h ? rng.Uniform(h->first, h->second) : 0;
      for (int k : order) {
        if (k == 0 && b) AdjustBrightness(img, fb);
        if (k == 1 && c) AdjustContrast(img, fc);
        if (k == 2 && s) AdjustSaturation(img, fs);
        if (k == 3 && h) AdjustHue(img, fh);
      }
    });
  }
  if (op == "randomRotation") {
    auto degrees = r.Range("degrees", -1e6, 1e6);
    if (!degrees) throw RangeError(r.Where("degrees") + " is required");
    auto fill = r.Fill();
    const auto range = *degrees;
    return image_op([=](Image& img, Rng& rng) { img = Rotate(img, rng.Uniform(range.first, range.second), fill); });
  }
  if (op == "randomApply") return MakeRandomApply(spec, r);
  if (op == "randomResizedCrop") {
    const auto [th, tw] = r.Size("size");
    auto scale = r.Range("scale", 0, 1e6).value_or(std::make_pair(0.08, 1.0));
    auto ratio = r.Range("ratio", 1e-6, 1e6).value_or(std::make_pair(3.0 / 4.0, 4.0 / 3.0));
    if (scale.second <= 0) throw RangeError(r.Where("scale") + " must have hi > 0");
    return image_op([=, th = th, tw = tw](Image& img, Rng& rng) {
      CheckOutputSize(th, tw, "randomResizedCrop");
      auto box = ResizedCropBox(img, scale.first, scale.second, ratio.first, ratio.second, rng);
      img = Resize(Crop(img, box[0], box[1], box[2], box[3]), th, tw);
    });
  }
  throw RangeError("transforms: unknown transform '" + op +
                   "' (known: toTensor, normalize, pad, crop, centerCrop, resize, hflip, vflip, rotate, "
                   "adjustBrightness, adjustContrast, adjustSaturation, adjustHue, randomCrop, "
                   "randomHorizontalFlip, randomVerticalFlip, colorJitter, randomRotation, randomResizedCrop, randomApply)");
}

std::unique_ptr<Transform> MakeRandomApply(const TransformSpec& spec, const SpecReader& r) {
  const double p = r.Number("p", 0, 1, 0.5);
  if (spec.steps.empty()) throw RangeError(r.Where("steps") + " must list at least one transform");
  std::vector<std::unique_ptr<Transform>> steps;
  for (size_t i = 0; i < spec.steps.size(); ++i) {
    auto step = MakeTransform(spec.steps[i]);
    if (step->TakesFloat() || step->GivesFloat()) {
      throw RangeError(r.Where("steps") + ": " + spec.steps[i].op + " (step " + std::to_string(i + 1) +
                       ") does not work on 8-bit images; randomApply wraps image transforms only");
    }
    steps.push_back(std::move(step));
  }
  return std::make_unique<RandomApplyOp>(p, std::move(steps));
}

}  // namespace

Pipeline::Pipeline(const std::vector<TransformSpec>& specs, bool takes_float) {
  bool is_float = takes_float;
  for (size_t i = 0; i < specs.size(); ++i) {
    auto step = MakeTransform(specs[i]);
    if (step->TakesFloat() != is_float) {
      throw RangeError("transforms: " + specs[i].op + " (step " + std::to_string(i + 1) + ") works on " +
                       (step->TakesFloat() ? "a float tensor image: put toTensor() before it"
                                           : "an 8-bit image: put it before toTensor()"));
    }
    is_float = step->GivesFloat();
    steps_.push_back(std::move(step));
  }
  gives_float_ = is_float;
}

void Pipeline::Apply(Sample& sample, uint64_t seed) const {
  Rng rng(seed);
  for (const auto& step : steps_) step->Apply(sample, rng);
}

}  // namespace torch_attn::data
