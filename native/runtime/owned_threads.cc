#include "runtime/owned_threads.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace torch_attn::runtime {

namespace {

struct Registry {
  std::mutex mutex;
  struct Entry {
    const void* owner;
    std::function<void()> stop;
  };
  std::map<uint64_t, Entry> threads;
  uint64_t next = 1;
  bool exiting = false;
};

// Never destroyed: it is used from the exit handler, after other statics may be gone.
Registry& Get() {
  static Registry* registry = new Registry();
  return *registry;
}

void Stop(const void* owner, bool all, bool exiting) {
  std::vector<std::function<void()>> stops;
  {
    std::lock_guard<std::mutex> lock(Get().mutex);
    if (exiting) Get().exiting = true;
    for (auto it = Get().threads.begin(); it != Get().threads.end();) {
      if (all || it->second.owner == owner) {
        stops.push_back(std::move(it->second.stop));
        it = Get().threads.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& stop : stops) stop();
}

void StopAllAtExit() { Stop(nullptr, true, true); }

}  // namespace

uint64_t OwnThread(const void* owner, std::function<void()> stop_and_join) {
  static std::once_flag installed;
  std::call_once(installed, [] { std::atexit(StopAllAtExit); });
  std::lock_guard<std::mutex> lock(Get().mutex);
  const uint64_t id = Get().next++;
  if (!Get().exiting) Get().threads.emplace(id, Registry::Entry{owner, std::move(stop_and_join)});
  return id;
}

void StopOwnedThreads(const void* owner, bool all) { Stop(owner, all, all); }

void ReleaseThread(uint64_t id) {
  std::lock_guard<std::mutex> lock(Get().mutex);
  Get().threads.erase(id);
}

}  // namespace torch_attn::runtime
