// The compute thread: one long-lived thread on which model work (predict, training steps,
// evaluation, forward) runs, in order. LibTorch's kernels use all cores from it; keeping its
// work on one thread keeps glibc's malloc to one arena (and OpenMP to one team) for it,
// instead of one per libuv pool thread, which held twice the memory PyTorch does for the same
// training.
#pragma once

#include <functional>

namespace torch_attn::runtime {

// Runs fn on the compute thread, with the process's thread count applied, and waits for it
// (fn must not throw). Throws instead of running fn once the process is exiting (a job still
// queued when process.exit() stops the thread is given up, so its caller does not wait for ever).
void RunOnComputeThread(const std::function<void()>& fn);

// Runs fn here, on the calling thread (a libuv pool thread), with LibTorch's kernels alone on it
// (RunKernelsAlone, runtime.h): for jobs that read, wait or copy rather than compute.
void RunHere(const std::function<void()>& fn);

}  // namespace torch_attn::runtime
