// Process-wide LibTorch settings: what the addon was built against, threads, seeds, CUDA.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace torch_attn::runtime {

struct BuildInfo {
  std::string libtorch_version;  // as LibTorch's own headers state it
  std::string libtorch_dir;      // the folder the addon links LibTorch from (its rpath)
  bool cuda = false;             // built against a CUDA LibTorch
  std::string cuda_version;      // the CUDA runtime LibTorch was built with ("12.4"), else empty
};

BuildInfo GetBuildInfo();

bool CudaIsAvailable();
// cuDNN autotuning (torch.backends.cudnn.benchmark), process-wide; stays off without CUDA.
void SetCudnnBenchmark(bool on);
bool CudnnBenchmark();
// The first GPU's compute capability as "major.minor"; empty without CUDA or a GPU.
std::string CudaCapability();
int64_t CudaDeviceCount();

// Intra-op threads. LibTorch keeps this per OS thread (OpenMP), so the value is also remembered
// process-wide and re-applied by ApplyNumThreads() on every thread that runs work.
void SetNumThreads(int n);
int GetNumThreads();
void ApplyNumThreads();
// For threads that only wait on work or do light work themselves (the JS thread, libuv's pool):
// LibTorch's kernels run on this thread alone, so that it never starts an OpenMP team of its
// own. libgomp lets a team's idle threads spin briefly before they sleep only while it manages
// no more threads than there are cores; a second team (the JS thread's, from a model's
// initialisation) took that away from the compute thread's team, whose worker then slept and
// was woken through the kernel between consecutive kernels (ResNet18-CBAM at batch 1: 9.5 ms a
// pass against 7.6-8.2 without the second team, 2 cores).
void RunKernelsAlone();

// Seeds every LibTorch generator (CPU and, when present, CUDA).
void ManualSeed(uint64_t seed);

// LibTorch's default CPU generator (dropout, randn, ...), under its lock: a 64-bit value drawn
// from it (so manualSeed() also fixes work seeded from it), and its whole state, for checkpoints.
uint64_t DrawSeed();
at::Tensor RngState();
// CheckpointError when `state` is not a generator state.
void SetRngState(const at::Tensor& state);

}  // namespace torch_attn::runtime
