// Images on the data path: 8-bit HWC (what decoders give and the geometric and colour transforms
// work on, like a PIL image or a uint8 tensor) and float CHW (after toTensor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/alignment.h>

namespace torch_attn::data {

// The allocator of image buffers: malloc's blocks, aligned as a LibTorch tensor's (64 bytes), so that
// a decoded or transformed image becomes a tensor by handing its buffer over (`TakeAsTensor`)
// instead of by a copy; and resize() leaves new values uninitialised, because a decoder or
// transform overwrites every one (zero-filling first touches every page twice). Each image used to
// be a buffer from malloc copied into one from LibTorch's allocator (posix_memalign, which asks
// glibc for more than the size it later frees, so the holes it leaves never fit the next image's
// request): a loop of decodes grew glibc's heap by about an image a call (docs/measurements.md,
// "Images decoded in a loop"). Giving the buffer LibTorch's allocation instead only delayed that.
template <typename T>
struct ImageAllocator {
  using value_type = T;
  static constexpr size_t kAlignment = c10::gAlignment;  // a LibTorch tensor's
  static_assert(kAlignment >= 16 && (kAlignment & (kAlignment - 1)) == 0, "a power of two, at least malloc's own");
  template <typename U>
  struct rebind {
    using other = ImageAllocator<U>;
  };
  ImageAllocator() = default;
  template <typename U>
  ImageAllocator(const ImageAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    if (n > (SIZE_MAX - kAlignment) / sizeof(T)) throw std::bad_alloc();
    // malloc's blocks are 16-byte aligned: the aligned address lies 8 to kAlignment bytes in, and
    // the block's own address is kept in the 8 bytes before it.
    void* block = std::malloc(n * sizeof(T) + kAlignment);
    if (block == nullptr) throw std::bad_alloc();
    const uintptr_t aligned = (reinterpret_cast<uintptr_t>(block) + sizeof(void*) + kAlignment - 1) & ~uintptr_t{kAlignment - 1};
    reinterpret_cast<void**>(aligned)[-1] = block;
    return reinterpret_cast<T*>(aligned);
  }
  void deallocate(T* p, size_t) noexcept {
    if (p != nullptr) std::free(reinterpret_cast<void**>(p)[-1]);
  }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const ImageAllocator<U>&) const noexcept {
    return true;
  }
  template <typename U>
  bool operator!=(const ImageAllocator<U>&) const noexcept {
    return false;
  }
};

using PixelBuffer = std::vector<uint8_t, ImageAllocator<uint8_t>>;
using FloatBuffer = std::vector<float, ImageAllocator<float>>;

struct Image {
  int64_t height = 0, width = 0, channels = 0;
  PixelBuffer pixels;  // height * width * channels, row-major, channels interleaved; written before read

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c) : height(h), width(w), channels(c), pixels(static_cast<size_t>(h * w * c)) {}
  uint8_t* row(int64_t y) { return pixels.data() + y * width * channels; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * channels; }
};

struct FloatImage {
  int64_t channels = 0, height = 0, width = 0;
  FloatBuffer values;  // channels * height * width, planar
};

// What a transform pipeline hands on: an 8-bit image, or a float tensor image after toTensor.
struct Sample {
  bool is_float = false;
  Image image;
  FloatImage tensor;
  int64_t label = 0;
};

// Limits on images from outside, checked from the file's size and the image header before
// anything is allocated. max_pixels follows PIL (Image.MAX_IMAGE_PIXELS): larger images are a
// DataError above twice it, as PIL raises DecompressionBombError. Process-wide.
struct ImageLimits {
  int64_t max_pixels = 89478485;            // PIL's default
  uint64_t max_file_bytes = uint64_t{256} << 20;  // 256 MiB
};
ImageLimits GetImageLimits();
// The most pixels an image on the data path may have: twice max_pixels, the largest image a decoder
// gives (PIL's DecompressionBombError threshold). Transforms hold their outputs to it too, so that
// a transform's size (a resize, a pad, a crop) cannot ask for gigabytes from a small image.
int64_t MaxImagePixels();
// RangeError for a limit below 1.
void SetImageLimits(const ImageLimits& limits);

// Decodes a JPEG or PNG held in memory into 8-bit RGB (grayscale is expanded, alpha dropped as
// PIL's convert('RGB') does). `name` (the file) appears in every error. `max_pixels_here`: the
// caller's own limit on width x height besides the process-wide ones (0: none), refused from the
// header like them (a DataError naming both).
Image DecodeImage(const std::string& bytes, const std::string& name, int64_t max_pixels_here = 0);

// The width and height a JPEG's or PNG's header declares, read from the header alone; false when
// it cannot tell (not JPEG or PNG, a header it cannot read: DecodeImage then says why).
bool DeclaredSize(const std::string& bytes, int64_t* width, int64_t* height);

// Reads a whole image file: a regular file of at most max_file_bytes; a clear error naming it
// otherwise.
std::string ReadFile(const std::string& path);

}  // namespace torch_attn::data
