#include "runtime/cpu_cache.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace torch_attn::runtime {

namespace {

constexpr size_t kMinCached = size_t{128} << 10;
constexpr size_t kGranule = size_t{64} << 10;

// The size a block of n bytes is given, and kept under: whole granules, four classes to an octave
// from 4 granules up (4, 5, 6, 7 x 2^k granules), so a block is at most a quarter larger than
// asked. Passes of nearby shapes then reuse each other's blocks: a batcher's batch sizes 20 to 32
// ask for ResNet18's layer1 activations in four classes instead of thirteen sizes, and the cache
// held each size's blocks apart (a batched server's RSS 1051 MB against 754 when its batches were
// 10 to 22). A block's tail past what its tensor uses is touched only if a larger tensor of its
// class used it before.
size_t SizeClass(size_t n) {
  size_t granules = (n + kGranule - 1) / kGranule;
  if (granules > 4) {
    size_t step = 1;
    while (granules >= 8 * step) step <<= 1;  // granules in [4 step, 8 step)
    granules = (granules + step - 1) / step * step;
  }
  return granules * kGranule;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  explicit CachingCpuAllocator(int64_t limit) : limit_(limit) {}

  // allocate() is const in LibTorch 1.x and not in 2.x: one of these two overrides it, the other
  // forwards to it, and no version number is guessed.
  c10::DataPtr allocate(size_t n) { return static_cast<const CachingCpuAllocator&>(*this).allocate(n); }
  c10::DataPtr allocate(size_t n) const {
    if (n < kMinCached) {
      // Small blocks never touch the cache, nor its lock. (Release, the raw deleter, frees them
      // too: it does not find them among the cached sizes.)
      void* p = c10::alloc_cpu(n);
      return {p, p, &c10::free_cpu, c10::Device(c10::DeviceType::CPU)};
    }
    const size_t size = SizeClass(n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++allocations_[size];
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= static_cast<int64_t>(size);
        ++hits_;
        sizes_[p] = size;
        return {p, p, &Release, c10::Device(c10::DeviceType::CPU)};
      }
      ++misses_;
    }
    void* p = c10::alloc_cpu(size);  // throws on failure, as LibTorch's own does
    {
      std::lock_guard<std::mutex> lock(mutex_);
      sizes_[p] = size;
    }
    return {p, p, &Release, c10::Device(c10::DeviceType::CPU)};
  }

  // Data and context are the same pointer, so raw_allocate()/raw_deallocate() (what oneDNN's
  // ideep uses) work too.
  c10::DeleterFnPtr raw_deleter() const override { return &Release; }

  // LibTorch 2.x asks allocators to copy (no `override`: 1.13 has no such method).
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

  // A freed block is kept when its size recurs (allocated at least twice: the buffers of a pass
  // that runs again), and the cache has room; one-off blocks (a checkpoint's tensors) go back.
  void Free(void* p) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = sizes_.find(p);
      if (it != sizes_.end()) {
        const size_t size = it->second;
        sizes_.erase(it);
        if (allocations_[size] >= 2 && cached_ + static_cast<int64_t>(size) <= limit_) {
          free_[size].push_back(p);
          cached_ += static_cast<int64_t>(size);
          return;
        }
      }
    }
    c10::free_cpu(p);
  }

  CpuCacheStats Stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_, limit_, hits_, misses_};
  }

  void Empty() {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [size, list] : free_) blocks.insert(blocks.end(), list.begin(), list.end());
      free_.clear();
      cached_ = 0;
    }
    for (void* p : blocks) c10::free_cpu(p);
  }

 private:
  static void Release(void* p);

  const int64_t limit_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;
  mutable std::unordered_map<void*, size_t> sizes_;
  mutable std::unordered_map<size_t, int64_t> allocations_;
  mutable int64_t cached_ = 0, hits_ = 0, misses_ = 0;
};

CachingCpuAllocator* instance = nullptr;

void CachingCpuAllocator::Release(void* p) { instance->Free(p); }

int64_t LimitFromEnvironment() {
  const char* v = std::getenv("TORCH_ATTN_CPU_CACHE_MB");
  if (v == nullptr || *v == '\0') return int64_t{1024} << 20;
  char* end = nullptr;
  long long mb = std::strtoll(v, &end, 10);
  return (end == v || *end != '\0' || mb < 0) ? int64_t{1024} << 20 : static_cast<int64_t>(mb) << 20;
}

}  // namespace

void InstallCpuCache() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int64_t limit = LimitFromEnvironment();
    if (limit == 0) return;
    // Never destroyed: tensors may outlive every JS context, and are freed through it.
    instance = new CachingCpuAllocator(limit);
    c10::SetCPUAllocator(instance, /*priority=*/1);
  });
}

CpuCacheStats GetCpuCacheStats() { return instance ? instance->Stats() : CpuCacheStats{}; }

void EmptyCpuCache() {
  if (instance) instance->Empty();
}

}  // namespace torch_attn::runtime
