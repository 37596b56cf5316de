// Tensor creation and transfer in plain C++ (no N-API): what the tensor wrapper calls.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch_attn::tensor {

// 'cpu', 'cuda', 'cuda:N'. Throws RangeError for malformed names and for devices this process
// cannot use (no CUDA in this LibTorch, no such GPU).
c10::Device ParseDevice(const std::string& name);
std::string DeviceName(const c10::Device& device);

// Product of dims with overflow checking; throws RangeError when it exceeds what memory can hold.
int64_t NumelOf(const std::vector<int64_t>& shape, const std::string& what);

// Copies `count` elements of type `source` from `data` into a new tensor of `shape`, then
// converts it to `target` on `device`. The caller's memory is not referenced afterwards.
at::Tensor FromData(const void* data, int64_t count, c10::ScalarType source, const std::vector<int64_t>& shape,
                    c10::ScalarType target, const c10::Device& device);

enum class Fill { kZeros, kOnes, kRandn };
at::Tensor Filled(Fill fill, const std::vector<int64_t>& shape, c10::ScalarType dtype, const c10::Device& device);
at::Tensor Arange(double start, double end, double step, c10::ScalarType dtype, const c10::Device& device);

// A contiguous CPU copy (converted to `dtype` when given) whose bytes can be copied out.
at::Tensor HostCopy(const at::Tensor& t, c10::optional<c10::ScalarType> dtype = c10::nullopt);

}  // namespace torch_attn::tensor
