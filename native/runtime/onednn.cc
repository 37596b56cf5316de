#include "runtime/onednn.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <cstring>

#include "common/errors.h"

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

// The path of the loaded libdnnl (its soname varies: libdnnl.so.2, libdnnl.so.3.6 on Debian 13);
// empty when LibTorch carries oneDNN inside itself (the official archives).
std::string LoadedOneDnnPath() {
  std::string found;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        const char* name = info->dlpi_name;
        if (name != nullptr && std::strstr(name, "/libdnnl.so") != nullptr) {
          *static_cast<std::string*>(data) = name;
          return 1;
        }
        return 0;
      },
      &found);
  return found;
}

OneDnn Detect() {
  OneDnn out;
  const std::string path = LoadedOneDnnPath();
  if (!path.empty()) {
    void* lib = dlopen(path.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    using VersionFn = const DnnlVersion* (*)();
    auto fn = lib == nullptr ? nullptr : reinterpret_cast<VersionFn>(dlsym(lib, "dnnl_version"));
    if (fn != nullptr) {
      const DnnlVersion* v = fn();
      out.version = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
      out.padded_conv_backward_unsafe = v->major == 3 && v->minor == 7;
    }
    if (lib != nullptr) dlclose(lib);
  }
  // TORCH_ATTN_CONV_INPUT_GRAD=aten|onednn overrides the choice made from the version.
  if (const char* env = std::getenv("TORCH_ATTN_CONV_INPUT_GRAD"); env != nullptr && *env != '\0') {
    if (std::strcmp(env, "aten") == 0) {
      out.padded_conv_backward_unsafe = true;
    } else if (std::strcmp(env, "onednn") == 0) {
      out.padded_conv_backward_unsafe = false;
    } else {
      throw RangeError(std::string("TORCH_ATTN_CONV_INPUT_GRAD must be 'aten' or 'onednn' (or unset), got '") + env + "'");
    }
  }
  return out;
}

}  // namespace

const OneDnn& GetOneDnn() {
  static const OneDnn onednn = Detect();
  return onednn;
}

}  // namespace torch_attn::runtime
