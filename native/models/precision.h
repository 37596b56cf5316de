// The precision a model computes in, PyTorch's autocast semantics: parameters, optimizer state
// and checkpoints stay float32; the ops autocast lists (convolutions, matmuls) run in bfloat16 or
// float16; losses and metrics are float32. One table of names, which TS reads from the addon.
#pragma once

#include <torch/torch.h>

#include <array>
#include <string>

namespace torch_attn::models {

enum class Precision { kFp32, kBf16, kFp16 };

inline constexpr std::array<const char*, 3> kPrecisionNames = {"fp32", "bf16", "fp16"};

// RangeError naming `where` and the allowed names.
Precision ParsePrecision(const std::string& name, const std::string& where);
const char* PrecisionName(Precision p);

// RangeError when `device` cannot compute in `p`: fp16 runs on CUDA only.
void CheckPrecision(Precision p, const c10::Device& device, const std::string& where);

// Autocast on for `device`'s type in `p` for this thread while it lives (nothing for fp32);
// restores the previous state, and clears autocast's cast cache when the outermost scope ends,
// as torch.autocast's __exit__ does.
class AutocastScope {
 public:
  AutocastScope(Precision p, const c10::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kFloat;
};

// The CPU has bfloat16 arithmetic in hardware (avx512_bf16 or AMX); elsewhere bf16 runs, emulated
// and slowly.
bool CpuHasNativeBf16();

}  // namespace torch_attn::models
