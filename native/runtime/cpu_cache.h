// A caching CPU allocator for LibTorch: blocks of 128 KiB and more (activations, oneDNN outputs)
// are kept when freed and handed out again for the same size class (four to an octave), so that a
// forward pass that runs again and again (an inference plan, a training step; passes of nearby
// batch sizes) reuses its buffers instead of mapping fresh pages from the kernel on every call
// (measured: page faults took about a tenth of a batch-64 ResNet18 pass). Smaller blocks go to
// malloc as before. At most a bounded number of bytes are kept (TORCH_ATTN_CPU_CACHE_MB, default
// 1024; 0 turns the cache off).
#pragma once

#include <cstdint>

namespace torch_attn::runtime {

// Installs the allocator as LibTorch's CPU allocator (once per process).
void InstallCpuCache();

struct CpuCacheStats {
  int64_t cached_bytes = 0;  // free blocks kept for reuse
  int64_t limit_bytes = 0;
  int64_t hits = 0, misses = 0;
};
CpuCacheStats GetCpuCacheStats();
// Frees every block kept for reuse.
void EmptyCpuCache();

}  // namespace torch_attn::runtime
