// What the optional fast paths (hand-written AVX-512 kernels, Winograd, oneDNN's own API) ask of
// the process: whether the CPU has AVX-512, and whether an environment switch turns a path off.
// Core only: no N-API.
#pragma once

#include <cstdlib>
#include <cstring>

namespace torch_attn::runtime {

// Whether the CPU has AVX-512 (foundation), asked once.
inline bool CpuHasAvx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

// AVX-512 with its byte/word (BW) and 256-bit (VL) parts: masked 16-bit loads and stores, which the
// bfloat16 kernels need. Every AVX-512 CPU but the Xeon Phi has them.
inline bool CpuHasAvx512BwVl() {
  static const bool has = CpuHasAvx512() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return has;
}

// Whether the environment variable `name` is "0": the switch that turns a fast path off, read
// when called.
inline bool SwitchedOff(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, "0") == 0;
}

}  // namespace torch_attn::runtime
