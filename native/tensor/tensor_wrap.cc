#include "tensor/tensor_wrap.h"

#include <cstdlib>
#include <cstring>
#include <utility>

#include "common/addon_data.h"
#include "common/args.h"
#include "tensor/dtype.h"
#include "tensor/tensor_core.h"

namespace torch_attn::tensor {

namespace {

// Marks JS objects made by TensorWrap, so a look-alike object is refused instead of cast.

// Set by Wrap() for the constructor call it makes; JS code calling `new Tensor()` finds it empty.
thread_local at::Tensor* pending_tensor = nullptr;

bool HasTensorTag(const Napi::Value& value) {
  if (!value.IsObject()) return false;
  bool tagged = false;
  napi_status status = napi_check_object_type_tag(value.Env(), value, &TensorWrap::kTypeTag, &tagged);
  return status == napi_ok && tagged;
}

// The most elements V8 puts in one TypedArray (v8::TypedArray::kMaxLength on 64-bit); asking
// for more is a fatal error inside V8, not an exception.
constexpr size_t kMaxTypedArrayLength = size_t{1} << 32;

// A new TypedArray of the given kind holding a copy of `bytes` bytes from `src`. The memory is
// allocated here, where a failure can be reported, and handed to V8 (whose own allocation
// failure would end the process).
Napi::Value CopyToTypedArray(Napi::Env env, napi_typedarray_type kind, const void* src, size_t bytes,
                             size_t element_size) {
  const size_t length = bytes / element_size;
  if (length > kMaxTypedArrayLength) {
    throw OutOfMemoryError("the tensor has " + std::to_string(length) + " elements; a TypedArray holds at most " +
                           std::to_string(kMaxTypedArrayLength) + ": copy it out in slices");
  }
  void* data = std::malloc(bytes > 0 ? bytes : 1);
  if (data == nullptr) throw OutOfMemoryError("out of memory: " + std::to_string(bytes) + " bytes for the tensor's copy could not be allocated");
  if (bytes > 0) std::memcpy(data, src, bytes);
  Napi::ArrayBuffer buffer;
  try {
    // Reported to V8 like its own buffers, so the garbage collector sees the memory.
    buffer = Napi::ArrayBuffer::New(env, data, bytes, [bytes](Napi::Env finalizing, void* p) {
      std::free(p);
      Napi::MemoryManagement::AdjustExternalMemory(finalizing, -static_cast<int64_t>(bytes));
    });
    Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
  } catch (...) {
    std::free(data);
    throw;
  }
  napi_value out;
  NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, kind, bytes / element_size, buffer, 0, &out), Napi::Value());
  return Napi::Value(env, out);
}

Napi::Value TensorFromData(const Napi::CallbackInfo& info) {
  // tensor(data: TypedArray, shape: number[], dtype?: string, device?: string)
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) args::ThrowType("tensor() data", "a TypedArray or an Array of numbers", info[0]);
  auto data = info[0].As<Napi::TypedArray>();
  auto shape = args::Shape(info[1], "tensor() shape");
  bool has_dtype = !info[2].IsUndefined();
  std::string dtype_name = has_dtype ? args::String(info[2], "tensor() dtype") : "";

  const DType* source;
  if (data.TypedArrayType() == napi_uint16_array) {
    // Raw half-precision bits: only meaningful with an explicit 16-bit float dtype.
    if (dtype_name != "float16" && dtype_name != "bfloat16") {
      throw TypeError("a Uint16Array holds raw float16/bfloat16 bits: pass dtype 'float16' or 'bfloat16'");
    }
    source = &DTypeByName(dtype_name, "tensor() dtype");
  } else {
    source = &DTypeOfArray(data.TypedArrayType());
  }
  const DType& target = has_dtype ? DTypeByName(dtype_name, "tensor() dtype") : *source;
  c10::Device device = info[3].IsUndefined() ? c10::Device(c10::kCPU) : ParseDevice(args::String(info[3], "tensor() device"));

  int64_t count = NumelOf(shape, "tensor() shape");
  auto length = static_cast<int64_t>(data.ElementLength());
  if (count != length) {
    throw RangeError("tensor(): shape " + c10::str(c10::IntArrayRef(shape)) + " holds " + std::to_string(count) +
                     " elements but data has " + std::to_string(length));
  }
  const auto* bytes = static_cast<const uint8_t*>(data.ArrayBuffer().Data()) + data.ByteOffset();
  return TensorWrap::Wrap(env, FromData(bytes, count, source->scalar, shape, target.scalar, device));
}

// zeros / ones / randn(shape, dtype?, device?)
template <Fill kFill>
Napi::Value FilledTensor(const Napi::CallbackInfo& info) {
  static const char* kNames[] = {"zeros()", "ones()", "randn()"};
  std::string name = kNames[static_cast<int>(kFill)];
  auto shape = args::Shape(info[0], name + " shape");
  NumelOf(shape, name + " shape");
  const DType& dtype = info[1].IsUndefined() ? DTypeByName("float32", "")
                                             : DTypeByName(args::String(info[1], name + " dtype"), name + " dtype");
  if (kFill == Fill::kRandn && !dtype.floating) {
    throw RangeError("randn() needs a floating dtype (" + FloatingDTypes() + "), got " + dtype.name);  // in torch-attn's names, not LibTorch's ('Long')
  }
  c10::Device device = info[2].IsUndefined() ? c10::Device(c10::kCPU) : ParseDevice(args::String(info[2], name + " device"));
  return TensorWrap::Wrap(info.Env(), Filled(kFill, shape, dtype.scalar, device));
}

Napi::Value ArangeTensor(const Napi::CallbackInfo& info) {
  // arange(start, end, step, dtype, device): the TS layer fills the defaults.
  double start = args::Number(info[0], "arange() start");
  double end = args::Number(info[1], "arange() end");
  double step = args::Number(info[2], "arange() step");
  const DType& dtype = DTypeByName(args::String(info[3], "arange() dtype"), "arange() dtype");
  c10::Device device = ParseDevice(args::String(info[4], "arange() device"));
  return TensorWrap::Wrap(info.Env(), Arange(start, end, step, dtype.scalar, device));
}

}  // namespace

void TensorWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "Tensor",
      {
          TensorWrap::GuardedGetter<&TensorWrap::Shape>("shape"),
          TensorWrap::GuardedGetter<&TensorWrap::DTypeName>("dtype"),
          TensorWrap::GuardedGetter<&TensorWrap::Device>("device"),
          TensorWrap::GuardedGetter<&TensorWrap::Numel>("numel"),
          TensorWrap::GuardedGetter<&TensorWrap::Disposed>("disposed"),
          TensorWrap::GuardedMethod<&TensorWrap::Data>("data"),
          TensorWrap::GuardedMethod<&TensorWrap::ToFloat32Array>("toFloat32Array"),
          TensorWrap::GuardedMethod<&TensorWrap::Item>("item"),
          TensorWrap::GuardedMethod<&TensorWrap::To>("to"),
          TensorWrap::GuardedMethod<&TensorWrap::Dispose>("dispose"),
      });
  GetAddonData(env).tensor_constructor = Napi::Persistent(ctor);
  exports.Set("Tensor", ctor);
  exports.Set("tensor", Napi::Function::New(env, GuardedFn<&TensorFromData>, "tensor"));
  exports.Set("zeros", Napi::Function::New(env, GuardedFn<&FilledTensor<Fill::kZeros>>, "zeros"));
  exports.Set("ones", Napi::Function::New(env, GuardedFn<&FilledTensor<Fill::kOnes>>, "ones"));
  exports.Set("randn", Napi::Function::New(env, GuardedFn<&FilledTensor<Fill::kRandn>>, "randn"));
  exports.Set("arange", Napi::Function::New(env, GuardedFn<&ArangeTensor>, "arange"));
}

Napi::Object TensorWrap::Wrap(Napi::Env env, at::Tensor t) {
  DTypeOf(t.scalar_type());  // refuse types JS cannot read before a wrapper exists
  pending_tensor = &t;
  Napi::Object obj;
  try {
    obj = GetAddonData(env).tensor_constructor.New({});
  } catch (...) {
    pending_tensor = nullptr;
    throw;
  }
  pending_tensor = nullptr;
  return obj;
}

TensorWrap& TensorWrap::FromValue(const Napi::Value& value, const std::string& what) {
  if (!HasTensorTag(value)) args::ThrowType(what, "a Tensor", value);
  return *ObjectWrap<TensorWrap>::Unwrap(value.As<Napi::Object>());
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  Napi::Env env = info.Env();
  if (pending_tensor == nullptr) {
    throw Napi::TypeError::New(env, "Tensor cannot be constructed with new: use tensor(), zeros(), ones(), randn() or arange()");
  }
  tensor_ = std::move(*pending_tensor);
  pending_tensor = nullptr;
  NAPI_THROW_IF_FAILED_VOID(env, napi_type_tag_object(env, info.This(), &TensorWrap::kTypeTag));
  if (tensor_.is_cpu() && tensor_.has_storage()) {
    external_bytes_ = static_cast<int64_t>(tensor_.storage().nbytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, external_bytes_);
  }
}

TensorWrap::~TensorWrap() { Release(); }

void TensorWrap::Release() {
  if (external_bytes_ != 0) {
    // The C call, not the throwing wrapper: this also runs from the destructor, during GC and
    // while a worker's context is torn down, where a C++ exception would terminate the process.
    int64_t adjusted = 0;
    napi_adjust_external_memory(Env(), -external_bytes_, &adjusted);
    external_bytes_ = 0;
  }
  tensor_ = at::Tensor();
  disposed_ = true;
}

const at::Tensor& TensorWrap::Get() const {
  if (disposed_) throw DisposedError("this Tensor was disposed: dispose() freed its memory and it can no longer be used");
  return tensor_;
}

Napi::Array ShapeToJs(Napi::Env env, at::IntArrayRef sizes) {
  auto out = Napi::Array::New(env, sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sizes[i])));
  return out;
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) { return ShapeToJs(info.Env(), Get().sizes()); }

Napi::Value TensorWrap::DTypeName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), DTypeOf(Get().scalar_type()).name);
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), DeviceName(Get().device()));
}

Napi::Value TensorWrap::Numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get().numel()));
}

Napi::Value TensorWrap::Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

Napi::Value TensorWrap::Data(const Napi::CallbackInfo& info) {
  const DType& dtype = DTypeOf(Get().scalar_type());
  at::Tensor host = HostCopy(Get());
  return CopyToTypedArray(info.Env(), dtype.array, host.data_ptr(), host.nbytes(), host.element_size());
}

Napi::Value TensorWrap::ToFloat32Array(const Napi::CallbackInfo& info) {
  at::Tensor host = HostCopy(Get(), at::kFloat);
  return CopyToTypedArray(info.Env(), napi_float32_array, host.data_ptr(), host.nbytes(), sizeof(float));
}

Napi::Value TensorWrap::Item(const Napi::CallbackInfo& info) {
  const auto& t = Get();
  if (t.numel() != 1) {
    throw RangeError("item() needs a tensor with exactly one element, this one has " + std::to_string(t.numel()) +
                     " (shape " + c10::str(t.sizes()) + ")");
  }
  Napi::Env env = info.Env();
  at::Tensor host = HostCopy(t);
  switch (host.scalar_type()) {
    case at::kBool: return Napi::Boolean::New(env, host.item<bool>());
    case at::kLong: return Napi::BigInt::New(env, host.item<int64_t>());
    default: return Napi::Number::New(env, host.item<double>());
  }
}

Napi::Value TensorWrap::To(const Napi::CallbackInfo& info) {
  c10::Device device = ParseDevice(args::String(info[0], "to() device"));
  // Always an independent copy, even on the same device: the two Tensors never share memory.
  return Wrap(info.Env(), Get().to(device, Get().scalar_type(), /*non_blocking=*/false, /*copy=*/true));
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  if (!disposed_) Release();
  return info.Env().Undefined();
}

Napi::Object NamedTensorsToJs(Napi::Env env, const NamedTensorList& tensors) {
  // A null prototype, so a key such as '__proto__' is an entry like any other; keys passed with
  // their length, so nothing is cut at a NUL byte.
  auto out = env.Global().Get("Object").As<Napi::Object>().Get("create").As<Napi::Function>().Call({env.Null()}).As<Napi::Object>();
  for (const auto& [name, tensor] : tensors) {
    auto key = Napi::String::New(env, name.data(), name.size());
    if (out.HasOwnProperty(key)) throw CheckpointError("the state dict names '" + name + "' twice");
    out.Set(key, TensorWrap::Wrap(env, tensor));
  }
  return out;
}

NamedTensorList NamedTensorsFromJs(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) args::ThrowType(what, "an object of name -> Tensor", value);
  auto dict = value.As<Napi::Object>();
  NamedTensorList tensors;
  auto keys = dict.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    Napi::Value js_key = keys.Get(i);
    std::string key = js_key.ToString().Utf8Value();  // with its length: a NUL byte stays
    if (key.find('\0') != std::string::npos) throw RangeError(what + ": a name holds a NUL byte");
    tensors.emplace_back(key, TensorWrap::FromValue(dict.Get(js_key), what + " entry '" + key + "'").Get());
  }
  return tensors;
}

}  // namespace torch_attn::tensor
