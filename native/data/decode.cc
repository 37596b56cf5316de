// Image decoding through libjpeg-turbo (TurboJPEG API) and libpng (simplified API): neither
// needs setjmp/longjmp, and every failure comes back as a message we can put in a DataError.
#include <png.h>
#include <turbojpeg.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/errors.h"
#include "common/files.h"
#include "data/image.h"

namespace torch_attn::data {

namespace {

std::atomic<int64_t> max_pixels{ImageLimits{}.max_pixels};
std::atomic<uint64_t> max_file_bytes{ImageLimits{}.max_file_bytes};

// Refused from the header, before any allocation: a small file must not ask for gigabytes.
void CheckSize(int64_t width, int64_t height, const std::string& name) {
  const int64_t limit = 2 * max_pixels.load();
  if (width <= 0 || height <= 0 || width * height > limit) {
    throw DataError(name + ": image size " + std::to_string(width) + "x" + std::to_string(height) +
                    " is more than " + std::to_string(limit) + " pixels, twice the image limit (a decompression bomb, as PIL " +
                    "calls it; raise the limit with datasets.imageLimits({ maxPixels }))");
  }
}

Image DecodeJpeg(const std::string& bytes, const std::string& name) {
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
  CheckSize(width, height, name);
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

Image DecodePng(const std::string& bytes, const std::string& name) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size())) {
    throw DataError(name + ": not a readable PNG (" + png.message + ")");
  }
  // Read RGBA and drop alpha ourselves: PIL's convert('RGB') ignores alpha, it does not composite.
  png.format = PNG_FORMAT_RGBA;
  try {
    CheckSize(png.width, png.height, name);
  } catch (...) {
    png_image_free(&png);
    throw;
  }
  PixelBuffer rgba(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, rgba.data(), 0, nullptr)) {
    std::string message = png.message;
    png_image_free(&png);
    throw DataError(name + ": corrupt PNG (" + message + ")");
  }
  Image image(png.height, png.width, 3);
  const size_t n = static_cast<size_t>(image.height * image.width);
  for (size_t i = 0; i < n; ++i) {
    image.pixels[3 * i] = rgba[4 * i];
    image.pixels[3 * i + 1] = rgba[4 * i + 1];
    image.pixels[3 * i + 2] = rgba[4 * i + 2];
  }
  return image;
}

}  // namespace

Image DecodeImage(const std::string& bytes, const std::string& name) {
  auto starts = [&](std::initializer_list<uint8_t> magic) {
    if (bytes.size() < magic.size()) return false;
    size_t i = 0;
    for (uint8_t m : magic) {
      if (static_cast<uint8_t>(bytes[i++]) != m) return false;
    }
    return true;
  };
  if (starts({0xff, 0xd8, 0xff})) return DecodeJpeg(bytes, name);
  if (starts({0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a})) return DecodePng(bytes, name);
  throw DataError(name + ": not a JPEG or PNG file (torch-attn decodes JPEG and PNG; " +
                  (bytes.empty() ? std::string("the file is empty") : "its first bytes match neither") + ")");
}

ImageLimits GetImageLimits() { return ImageLimits{max_pixels.load(), max_file_bytes.load()}; }

void SetImageLimits(const ImageLimits& limits) {
  if (limits.max_pixels < 1 || limits.max_file_bytes < 1) throw RangeError("image limits must be at least 1");
  max_pixels.store(limits.max_pixels);
  max_file_bytes.store(limits.max_file_bytes);
}

std::string ReadFile(const std::string& path) { return ReadRegularFileOr<DataError>(path, max_file_bytes.load()); }

}  // namespace torch_attn::data
