// libFuzzer target: the .pth reader (zip archive + restricted unpickler), both ways torch-attn
// reads it: a state dict (ReadPthBytes) and a training checkpoint's sections (ReadPthSectionsBytes).
// Any outcome other than tensors or a CheckpointError is a finding: a crash or sanitizer report,
// and also any other exception type (an unchecked c10 or standard-library error).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "models/pth_reader.h"

namespace {

template <typename Read>
void Expect(Read&& read) {
  try {
    read();
  } catch (const torch_attn::CheckpointError&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_pth: unexpected exception: %s\n", e.what());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  Expect([&] {
    for (const auto& [name, tensor] : torch_attn::models::ReadPthBytes(bytes, "fuzz.pth")) {
      if (name.empty() && tensor.numel() < 0) std::abort();
    }
  });
  Expect([&] { torch_attn::models::ReadPthSectionsBytes(bytes, "fuzz.pth"); });
  return 0;
}
