// Which shared library the process has loaded for a role, found by name among the loaded objects
// (dl_iterate_phdr): LibTorch's oneDNN (its soname varies: libdnnl.so.2, libdnnl.so.3.6), its
// OpenMP runtime (libgomp, or a copy bundled under another name). Core only: no N-API.
#pragma once

#include <link.h>

#include <cstring>
#include <initializer_list>
#include <string>

namespace torch_attn::runtime {

// The path of the first loaded object whose path contains one of `markers` ("/libdnnl.so"); empty
// when none does.
inline std::string LoadedLibraryPath(std::initializer_list<const char*> markers) {
  struct Search {
    std::initializer_list<const char*> markers;
    std::string found;
  } search{markers, {}};
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        auto* s = static_cast<Search*>(data);
        if (info->dlpi_name == nullptr) return 0;
        for (const char* marker : s->markers) {
          if (std::strstr(info->dlpi_name, marker) != nullptr) {
            s->found = info->dlpi_name;
            return 1;
          }
        }
        return 0;
      },
      &search);
  return search.found;
}

}  // namespace torch_attn::runtime
