#include "tensor/tensor_core.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <regex>

#include "common/errors.h"
#include "runtime/runtime.h"

namespace torch_attn::tensor {

c10::Device ParseDevice(const std::string& name) {
  static const std::regex kPattern("^(cpu|cuda)(:([0-9]{1,3}))?$");
  std::smatch m;
  if (!std::regex_match(name, m, kPattern) || (m[1] == "cpu" && m[2].matched)) {
    throw RangeError("device must be 'cpu', 'cuda' or 'cuda:N', got '" + name + "'");
  }
  if (m[1] == "cpu") return c10::Device(c10::kCPU);
  int64_t count = runtime::CudaDeviceCount();
  if (count == 0) {
    throw RangeError("device '" + name + "' is not available: " +
                     (runtime::GetBuildInfo().cuda
                          ? std::string("no CUDA device was found")
                          : std::string("this torch-attn build links a CPU-only LibTorch (rebuild with "
                                        "TORCH_ATTN_LIBTORCH pointing at a CUDA LibTorch)")));
  }
  int index = m[3].matched ? std::stoi(m[3].str()) : 0;
  if (index >= count) {
    throw RangeError("device '" + name + "' does not exist: " + std::to_string(count) +
                     " CUDA device(s), numbered from 0");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

std::string DeviceName(const c10::Device& device) { return device.str(); }

int64_t NumelOf(const std::vector<int64_t>& shape, const std::string& what) {
  // Bound the element count well below int64 overflow; the allocator reports real exhaustion.
  constexpr int64_t kMaxNumel = int64_t{1} << 48;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d == 0) return 0;
  }
  for (int64_t d : shape) {
    if (d > kMaxNumel / n) {
      throw RangeError(what + " describes more than 2^48 elements, more than any device can hold");
    }
    n *= d;
  }
  return n;
}

at::Tensor FromData(const void* data, int64_t count, c10::ScalarType source, const std::vector<int64_t>& shape,
                    c10::ScalarType target, const c10::Device& device) {
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(source));
  TORCH_INTERNAL_ASSERT(t.numel() == count);
  if (count > 0) std::memcpy(t.data_ptr(), data, static_cast<size_t>(count) * t.element_size());
  return t.to(device, target);
}

at::Tensor Filled(Fill fill, const std::vector<int64_t>& shape, c10::ScalarType dtype, const c10::Device& device) {
  auto options = at::TensorOptions().dtype(dtype).device(device);
  switch (fill) {
    case Fill::kZeros: return at::zeros(shape, options);
    case Fill::kOnes: return at::ones(shape, options);
    case Fill::kRandn:
      if (!at::isFloatingType(dtype)) {
        throw RangeError(std::string("randn() needs a floating dtype (float32, float64, float16, bfloat16), got ") +
                         c10::toString(dtype));
      }
      return at::randn(shape, options);
  }
  throw RangeError("unknown fill");
}

at::Tensor Arange(double start, double end, double step, c10::ScalarType dtype, const c10::Device& device) {
  if (step == 0) throw RangeError("arange(): step must not be 0");
  if ((step > 0 && start > end) || (step < 0 && start < end)) {
    throw RangeError("arange(): step " + std::to_string(step) + " does not lead from start " +
                     std::to_string(start) + " to end " + std::to_string(end));
  }
  double count = std::ceil((end - start) / step);
  if (count > static_cast<double>(int64_t{1} << 48)) throw RangeError("arange(): too many elements");
  return at::arange(start, end, step, at::TensorOptions().dtype(dtype).device(device));
}

at::Tensor HostCopy(const at::Tensor& t, c10::optional<c10::ScalarType> dtype) {
  at::Tensor out = t.to(c10::Device(c10::kCPU), dtype.value_or(t.scalar_type()));
  return out.contiguous();
}

}  // namespace torch_attn::tensor
