// libFuzzer target: JPEG (libjpeg-turbo) and PNG (libpng) decoding as the image folders use it,
// with the decompression-bomb limit lowered so that a claimed size is refused at 2 M pixels; and
// the header peek (DeclaredSize) that decides whether decodeImage decodes an image inline.
// Anything but an image or a DataError is a finding (crash, sanitizer report, other exception).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "common/errors.h"
#include "data/image.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  torch_attn::data::SetImageLimits({1 << 20, uint64_t{1} << 24});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  int64_t width = 0, height = 0;  // the header peek decodeImage uses to decode small images inline
  const bool declared = torch_attn::data::DeclaredSize(bytes, &width, &height);
  try {
    const auto image = torch_attn::data::DecodeImage(bytes, "fuzz.img");
    if (image.channels != 3 || image.pixels.size() != static_cast<size_t>(image.height * image.width * 3)) std::abort();
    // What the header declared is what was decoded (the inline bound relies on it).
    if (!declared || width != image.width || height != image.height) std::abort();
    unsigned sum = 0;  // every pixel is read: an unwritten or out-of-bounds one is the sanitizers' to report
    for (uint8_t p : image.pixels) sum += p;
    if (sum == 0xffffffffu) std::printf(" ");
  } catch (const torch_attn::DataError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_image: unexpected exception: %s\n", e.what());
    std::abort();
  }
  return 0;
}
