// Threads the addon starts that can be inside LibTorch when the process exits (a fine-tune's
// thread, and through it its loader threads). process.exit() runs the C++ exit handlers without
// tearing down JS environments, so a running thread would meet LibTorch's static objects being
// destroyed under it (a crash at exit). Each such thread registers how to stop and join it; an
// exit handler, installed after LibTorch was loaded (so it runs before LibTorch's own static
// destructors), stops and joins every one still registered.
#pragma once

#include <cstdint>
#include <functional>

namespace torch_attn::runtime {

// Registers `stop_and_join` (it must make the thread end soon and wait for it) for `owner` (the
// JS environment that started it; nullptr: the process); returns an id for ReleaseThread.
// Installs the exit handler on first use.
uint64_t OwnThread(const void* owner, std::function<void()> stop_and_join);

// The thread has ended or was joined by its owner: nothing to do for it at exit.
void ReleaseThread(uint64_t id);

// Stops and joins the threads of `owner`, or every thread when `all`. The JS layer calls this
// from process.on('exit'), which process.exit() reaches before any C++ exit handler or static
// destructor: the exit handler alone would run after LibTorch's lazily made statics are gone.
void StopOwnedThreads(const void* owner, bool all);

}  // namespace torch_attn::runtime
