#include "runtime/runtime.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/csrc/api/include/torch/version.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "common/errors.h"
#include "runtime/loaded_library.h"

#if TORCH_ATTN_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#endif

namespace torch_attn::runtime {

namespace {

int DefaultThreads() {
  // Respect the user's OMP_NUM_THREADS; otherwise use every core (LibTorch's own default on these
  // machines is 1, which halves throughput on a 2-core box).
  if (const char* env = std::getenv("OMP_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

std::atomic<int>& DesiredThreads() {
  static std::atomic<int> desired{DefaultThreads()};
  return desired;
}

// omp_set_num_threads of the OpenMP runtime LibTorch loaded (libgomp, or a copy bundled under
// another name); nullptr when there is none (a LibTorch built with its own thread pool).
using OmpSetNumThreads = void (*)(int);
OmpSetNumThreads FindOmpSetNumThreads() {
  const std::string path = LoadedLibraryPath({"/libgomp", "/libiomp", "/libomp"});
  if (path.empty()) return nullptr;
  void* lib = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);  // stays loaded: LibTorch needs it
  return lib == nullptr ? nullptr : reinterpret_cast<OmpSetNumThreads>(dlsym(lib, "omp_set_num_threads"));
}

// The CUDA runtime LibTorch's CUDA part was compiled against ("12.4"), as LibTorch states it
// (CUDART_VERSION, 12040: major * 1000 + minor * 10; no GPU needed), so that every build, CMake's
// or node-gyp's, reports the same. Empty where LibTorch's CUDA part did not load.
std::string CudaRuntimeVersion() {
  try {
    const long v = at::detail::getCUDAHooks().versionCUDART();
    return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace

BuildInfo GetBuildInfo() {
  BuildInfo info;
  info.libtorch_version = TORCH_VERSION;
  info.libtorch_dir = TORCH_ATTN_LIBTORCH_DIR;
  info.cuda = TORCH_ATTN_WITH_CUDA != 0;
  info.cuda_version = info.cuda ? CudaRuntimeVersion() : "";
  return info;
}

bool CudaIsAvailable() { return at::hasCUDA(); }

void SetCudnnBenchmark(bool on) { at::globalContext().setBenchmarkCuDNN(on && at::hasCUDA()); }

bool CudnnBenchmark() { return at::globalContext().benchmarkCuDNN(); }

std::string CudaCapability() {
#if TORCH_ATTN_WITH_CUDA
  if (!at::hasCUDA() || at::getNumGPUs() == 0) return "";
  const auto* props = at::cuda::getDeviceProperties(0);
  return std::to_string(props->major) + "." + std::to_string(props->minor);
#else
  return "";
#endif
}

int64_t CudaDeviceCount() { return at::hasCUDA() ? static_cast<int64_t>(at::getNumGPUs()) : 0; }

void SetNumThreads(int n) {
  if (n < 1 || n > 1024) {
    throw RangeError("setNumThreads(n): n must be an integer from 1 to 1024, got " + std::to_string(n));
  }
  // Applied by the threads that compute (ApplyNumThreads), not here: this is the JS thread.
  DesiredThreads().store(n);
}

int GetNumThreads() { return DesiredThreads().load(); }

void ApplyNumThreads() {
  // OpenMP's thread count is a per-thread setting, so each thread that runs LibTorch work
  // applies it. Only when it changed: at::set_num_threads also rebuilds LibTorch's global
  // pthreadpool (new threads that spin while they wait), which cost ~40% of a core when it
  // ran before every job.
  thread_local int applied = -1;
  const int desired = DesiredThreads().load();
  if (applied != desired) {
    at::set_num_threads(desired);
    applied = desired;
  }
}

void RunKernelsAlone() {
  thread_local bool alone = false;
  if (alone) return;
  static const OmpSetNumThreads set = FindOmpSetNumThreads();
  // LibTorch sets a thread's OpenMP count from its own setting at the thread's first parallel
  // kernel; that happens here first, and is then overridden for this thread only.
  at::internal::lazy_init_num_threads();
  if (set != nullptr) set(1);
  alone = true;
}

void ManualSeed(uint64_t seed) { at::manual_seed(seed); }

uint64_t DrawSeed() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get<at::CPUGeneratorImpl>()->random64();
}

at::Tensor RngState() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void SetRngState(const at::Tensor& state) {
  if (state.scalar_type() != at::kByte || state.dim() != 1) {
    throw RangeError("setRngState(state): expected the uint8 tensor rngState() gives");
  }
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state.contiguous());
  } catch (const c10::Error& e) {
    throw CheckpointError("setRngState(state): not a generator state (" + ShortTorchMessage(e.what_without_backtrace()) + ")");
  }
}

}  // namespace torch_attn::runtime
