// What torch.save's .pth files are made of, shared by the reader and the writer: the
// torch.<Type>Storage classes tensors are pickled as, and the dtype each holds.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <string>

namespace torch_attn::models {

struct StorageType {
  const char* name;
  at::ScalarType dtype;
};

inline constexpr std::array<StorageType, 10> kStorageTypes = {{
    {"FloatStorage", at::kFloat},
    {"DoubleStorage", at::kDouble},
    {"HalfStorage", at::kHalf},
    {"BFloat16Storage", at::kBFloat16},
    {"LongStorage", at::kLong},
    {"IntStorage", at::kInt},
    {"ShortStorage", at::kShort},
    {"CharStorage", at::kChar},
    {"ByteStorage", at::kByte},
    {"BoolStorage", at::kBool},
}};

// The dtype of torch.<name>; nullopt for anything else.
inline std::optional<at::ScalarType> StorageDtype(const std::string& name) {
  for (const auto& t : kStorageTypes) {
    if (name == t.name) return t.dtype;
  }
  return std::nullopt;
}

// The storage class name of `dtype`; nullptr for a dtype a .pth file cannot hold.
inline const char* StorageName(at::ScalarType dtype) {
  for (const auto& t : kStorageTypes) {
    if (t.dtype == dtype) return t.name;
  }
  return nullptr;
}

}  // namespace torch_attn::models
