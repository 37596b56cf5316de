#include "models/precision.h"

#include <fstream>
#include <sstream>

#include "common/errors.h"
#include "common/torch_compat.h"

namespace torch_attn::models {

Precision ParsePrecision(const std::string& name, const std::string& where) {
  for (size_t i = 0; i < kPrecisionNames.size(); ++i) {
    if (name == kPrecisionNames[i]) return static_cast<Precision>(i);
  }
  throw RangeError(where + " must be 'fp32', 'bf16' or 'fp16', got '" + name + "'");
}

const char* PrecisionName(Precision p) { return kPrecisionNames[static_cast<size_t>(p)]; }

void CheckPrecision(Precision p, const c10::Device& device, const std::string& where) {
  if (p == Precision::kFp16 && !device.is_cuda()) {
    throw RangeError(where + ": 'fp16' runs on CUDA only (with loss scaling); on the CPU use 'bf16', which needs none");
  }
}

AutocastScope::AutocastScope(Precision p, const c10::Device& device) {
  if (p == Precision::kFp32) return;
  CheckPrecision(p, device, "precision");
  active_ = true;
  device_type_ = device.type();
  was_enabled_ = compat::AutocastEnabled(device_type_);
  was_dtype_ = compat::AutocastDtype(device_type_);
  compat::SetAutocastEnabled(device_type_, true);
  compat::SetAutocastDtype(device_type_, p == Precision::kBf16 ? at::kBFloat16 : at::kHalf);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::SetAutocastEnabled(device_type_, was_enabled_);
  compat::SetAutocastDtype(device_type_, was_dtype_);
}

bool CpuHasNativeBf16() {
  static const bool native = [] {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
      if (line.rfind("flags", 0) != 0) continue;
      std::istringstream flags(line.substr(line.find(':') + 1));
      std::string flag;
      while (flags >> flag) {
        if (flag == "avx512_bf16" || flag == "amx_bf16") return true;
      }
      return false;
    }
    return false;
  }();
  return native;
}

}  // namespace torch_attn::models
