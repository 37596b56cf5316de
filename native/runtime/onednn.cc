#include "runtime/onednn.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "runtime/loaded_library.h"

namespace torch_attn::runtime {

namespace {

// oneDNN's own C ABI (dnnl_version_t in dnnl_types.h), declared here so that no oneDNN headers
// are needed to build.
struct DnnlVersion {
  int major;
  int minor;
  int patch;
  const char* hash;
  unsigned cpu_runtime;
  unsigned gpu_runtime;
};

OneDnn Detect() {
  OneDnn out;
  // Empty when LibTorch carries oneDNN inside itself (the official archives).
  const std::string path = LoadedLibraryPath({"/libdnnl.so"});
  if (!path.empty()) {
    void* lib = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    using VersionFn = const DnnlVersion* (*)();
    auto fn = lib == nullptr ? nullptr : reinterpret_cast<VersionFn>(dlsym(lib, "dnnl_version"));
    if (fn != nullptr) {
      const DnnlVersion* v = fn();
      out.version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
    }
    if (lib != nullptr) dlclose(lib);
  }
  return out;
}

OneDnn& State() {
  static OneDnn onednn = Detect();
  return onednn;
}

}  // namespace

const OneDnn& GetOneDnn() { return State(); }

void ApplyOneDnnWorkarounds() {
  static std::once_flag once;
  std::call_once(once, [] {
    OneDnn& onednn = State();
    if (onednn.version.rfind("3.7.", 0) != 0) return;
    if (std::getenv("ONEDNN_MAX_CPU_ISA") == nullptr) {
      setenv("ONEDNN_MAX_CPU_ISA", "SSE41", /*overwrite=*/0);
      onednn.isa_capped = true;
    }
  });
}

}  // namespace torch_attn::runtime
