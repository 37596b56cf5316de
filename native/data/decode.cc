// Image decoding through libjpeg-turbo (TurboJPEG API) and libpng; every failure comes back as a
// message we can put in a DataError.
#include <png.h>
#include <turbojpeg.h>

#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/errors.h"
#include "common/files.h"
#include "data/image.h"

namespace torch_attn::data {

namespace {

std::atomic<int64_t> max_pixels{ImageLimits{}.max_pixels};
std::atomic<uint64_t> max_file_bytes{ImageLimits{}.max_file_bytes};

// Refused from the header, before any allocation: a small file must not ask for gigabytes. First
// the caller's own limit (`caller_limit`, 0: none; a server's uploads), then PIL's rule.
void CheckSize(int64_t width, int64_t height, int64_t caller_limit, const std::string& name) {
  if (caller_limit > 0 && width * height > caller_limit) {
    throw DataError(name + ": " + std::to_string(width) + " x " + std::to_string(height) + " is " + std::to_string(width * height) +
                    " pixels, more than the " + std::to_string(caller_limit) + " this decoder takes (maxPixels)");
  }
  const int64_t limit = MaxImagePixels();
  if (width <= 0 || height <= 0 || width * height > limit) {
    throw DataError(name + ": image size " + std::to_string(width) + "x" + std::to_string(height) +
                    " is more than " + std::to_string(limit) + " pixels, twice the image limit (a decompression bomb, as PIL " +
                    "calls it; raise the limit with datasets.imageLimits({ maxPixels }))");
  }
}

Image DecodeJpeg(const std::string& bytes, int64_t caller_limit, const std::string& name) {
  std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
  if (!handle) throw DataError(name + ": cannot start the JPEG decoder");
  auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto size = static_cast<unsigned long>(bytes.size());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle.get(), data, size, &width, &height, &subsampling, &colorspace) != 0) {
    throw DataError(name + ": not a readable JPEG (" + tjGetErrorStr2(handle.get()) + ")");
  }
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
    throw DataError(name + ": CMYK JPEG images are not supported (convert it to RGB)");
  }
  CheckSize(width, height, caller_limit, name);
  Image image(height, width, 3);
  // Accurate integer DCT and fancy upsampling: what PIL (libjpeg's defaults) uses. At most 500
  // progressive scans: a file of thousands of tiny scans would decode for minutes.
  if (tjDecompress2(handle.get(), data, size, image.pixels.data(), width, 0, height, TJPF_RGB,
                    TJFLAG_ACCURATEDCT | TJFLAG_LIMITSCANS) != 0) {
    // Warnings (stray bytes between markers) are tolerated, as PIL tolerates them; a fatal error
    // or a file that ends early (PIL: "image file is truncated") is not.
    const std::string message = tjGetErrorStr2(handle.get());
    if (tjGetErrorCode(handle.get()) == TJERR_FATAL || message.find("Premature end") != std::string::npos ||
        message.find("scans") != std::string::npos) {
      throw DataError(name + ": corrupt or truncated JPEG (" + message + ")");
    }
  }
  return image;
}

// PNG through libpng's full API, because its simplified API converts to sRGB (16-bit samples and
// files with a gAMA chunk come out up to 69 levels away from PIL). PIL applies no gamma, no ICC
// profile and no sBIT shift: it converts the stored samples. libpng reports errors by longjmp, so
// the two functions that call it hold nothing with a destructor; their callers own the memory.
struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  const std::string* bytes = nullptr;
  size_t offset = 0;
  char message[256] = {0};
  ~PngReader() { png_destroy_read_struct(&png, &info, nullptr); }
};

void PngError(png_structp png, png_const_charp message) {
  auto* reader = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(reader->message, sizeof reader->message, "%s", message);
  png_longjmp(png, 1);
}

void PngWarning(png_structp, png_const_charp) {}  // benign (an ancillary chunk's CRC, say): PIL reads on

void PngRead(png_structp png, png_bytep out, png_size_t length) {
  auto* reader = static_cast<PngReader*>(png_get_io_ptr(png));
  if (length > reader->bytes->size() - reader->offset) png_error(png, "the file ends early (truncated)");
  std::memcpy(out, reader->bytes->data() + reader->offset, length);
  reader->offset += length;
}

// The header, and the transforms that turn every colour type into 8-bit samples as PIL's
// convert('RGB') does: palette looked up, 1/2/4-bit gray scaled to 0..255, 16-bit samples by their
// high byte, alpha and tRNS dropped, interlacing undone. Gray 16-bit is PIL's mode "I", which
// convert('RGB') clips at 255: it stays 16-bit here and is clipped by the caller (*clip16).
bool PngReadHeader(PngReader& r, uint32_t* width, uint32_t* height, bool* clip16) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_read_fn(r.png, &r, PngRead);
  // Text and colour-profile chunks are never used: skip them unread (no zTXt/iCCP inflation).
  static const png_byte kSkipped[] = "tEXt\0zTXt\0iTXt\0iCCP\0";
  png_set_keep_unknown_chunks(r.png, PNG_HANDLE_CHUNK_NEVER, kSkipped, 4);
  png_set_chunk_malloc_max(r.png, 8u << 20);
  png_read_info(r.png, r.info);
  int depth = 0, color = 0;
  png_get_IHDR(r.png, r.info, width, height, &depth, &color, nullptr, nullptr, nullptr);
  *clip16 = depth == 16 && color == PNG_COLOR_TYPE_GRAY;
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r.png);
  if (depth == 16 && !*clip16) png_set_strip_16(r.png);
  png_set_strip_alpha(r.png);  // also the alpha png_set_palette_to_rgb makes from a tRNS chunk
  if (!*clip16 && (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)) png_set_gray_to_rgb(r.png);
  png_set_interlace_handling(r.png);
  return true;
}

// Into rows the caller allocated for row_bytes each, after checking that the transforms give that.
bool PngReadRows(PngReader& r, png_bytepp rows, size_t row_bytes) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_read_update_info(r.png, r.info);
  if (png_get_rowbytes(r.png, r.info) != row_bytes) png_error(r.png, "unexpected row layout after conversion");
  png_read_image(r.png, rows);
  return true;
}

Image DecodePng(const std::string& bytes, int64_t caller_limit, const std::string& name) {
  PngReader r;
  r.bytes = &bytes;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, PngError, PngWarning);
  if (r.png) r.info = png_create_info_struct(r.png);
  if (!r.png || !r.info) throw DataError(name + ": cannot start the PNG decoder");
  uint32_t width = 0, height = 0;
  bool clip16 = false;
  if (!PngReadHeader(r, &width, &height, &clip16)) throw DataError(name + ": not a readable PNG (" + r.message + ")");
  CheckSize(width, height, caller_limit, name);
  const size_t row_bytes = size_t{width} * (clip16 ? 2 : 3);
  Image image(height, width, 3);
  PixelBuffer gray16(clip16 ? row_bytes * height : 0);
  std::vector<png_bytep> rows(height);
  for (uint32_t y = 0; y < height; ++y) rows[y] = clip16 ? gray16.data() + y * row_bytes : image.row(y);
  if (!PngReadRows(r, rows.data(), row_bytes)) throw DataError(name + ": corrupt PNG (" + r.message + ")");
  if (clip16) {
    const size_t n = size_t{width} * height;
    for (size_t i = 0; i < n; ++i) {
      const unsigned v = (unsigned{gray16[2 * i]} << 8) | gray16[2 * i + 1];  // PNG samples are big-endian
      const uint8_t c = static_cast<uint8_t>(v > 255 ? 255 : v);
      image.pixels[3 * i] = image.pixels[3 * i + 1] = image.pixels[3 * i + 2] = c;
    }
  }
  return image;
}

}  // namespace

Image DecodeImage(const std::string& bytes, const std::string& name, int64_t max_pixels_here) {
  auto starts = [&](std::initializer_list<uint8_t> magic) {
    if (bytes.size() < magic.size()) return false;
    size_t i = 0;
    for (uint8_t m : magic) {
      if (static_cast<uint8_t>(bytes[i++]) != m) return false;
    }
    return true;
  };
  if (starts({0xff, 0xd8, 0xff})) return DecodeJpeg(bytes, max_pixels_here, name);
  if (starts({0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a})) return DecodePng(bytes, max_pixels_here, name);
  throw DataError(name + ": not a JPEG or PNG file (torch-attn decodes JPEG and PNG; " +
                  (bytes.empty() ? std::string("the file is empty") : "its first bytes match neither") + ")");
}

bool DeclaredSize(const std::string& bytes, int64_t* width, int64_t* height) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 24 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && std::memcmp(b + 12, "IHDR", 4) == 0) {
    auto be32 = [&](size_t i) { return (int64_t{b[i]} << 24) | (int64_t{b[i + 1]} << 16) | (int64_t{b[i + 2]} << 8) | int64_t{b[i + 3]}; };
    *width = be32(16);
    *height = be32(20);
    return true;
  }
  if (bytes.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) {
    std::unique_ptr<void, int (*)(tjhandle)> handle(tjInitDecompress(), tjDestroy);
    int w = 0, h = 0, subsampling = 0, colorspace = 0;
    if (handle && tjDecompressHeader3(handle.get(), b, static_cast<unsigned long>(bytes.size()), &w, &h, &subsampling, &colorspace) == 0) {
      *width = w;
      *height = h;
      return true;
    }
  }
  return false;
}

ImageLimits GetImageLimits() { return ImageLimits{max_pixels.load(), max_file_bytes.load()}; }

int64_t MaxImagePixels() { return 2 * max_pixels.load(); }

void SetImageLimits(const ImageLimits& limits) {
  if (limits.max_pixels < 1 || limits.max_file_bytes < 1) throw RangeError("image limits must be at least 1");
  max_pixels.store(limits.max_pixels);
  max_file_bytes.store(limits.max_file_bytes);
}

std::string ReadFile(const std::string& path) { return ReadRegularFileOr<DataError>(path, max_file_bytes.load()); }

}  // namespace torch_attn::data
