// The JS-visible Tensor: owns one at::Tensor, reports its host memory to V8, and frees it on
// dispose() or, failing that, when garbage-collected.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <string>
#include <utility>
#include <vector>

#include "common/js_errors.h"
#include "common/no_dangling.h"

namespace torch_attn::tensor {

// A shape as a JS Array of numbers.
Napi::Array ShapeToJs(Napi::Env env, at::IntArrayRef sizes);

// { name: Tensor } objects, in property order (state dicts, optimizer state).
using NamedTensorList = std::vector<std::pair<std::string, at::Tensor>>;
Napi::Object NamedTensorsToJs(Napi::Env env, const NamedTensorList& tensors);
// TypeError naming the first entry that is not a Tensor.
NamedTensorList NamedTensorsFromJs(const Napi::Value& value, const std::string& what);

class TensorWrap : public Napi::ObjectWrap<TensorWrap>, public GuardedMethods<TensorWrap> {
 public:
  // Marks this class's JS objects: a look-alike, or another class's object, is refused.
  static constexpr napi_type_tag kTypeTag = {0x7a3c1f0e9b2d4c61ULL, 0x8e5f20a4d1c3b977ULL};
  static void Register(Napi::Env env, Napi::Object exports);
  // A new JS Tensor that owns `t`.
  static Napi::Object Wrap(Napi::Env env, at::Tensor t);
  // The Tensor behind a JS value; TypeError when it is anything else (checked by type tag).
  TA_NO_DANGLING static TensorWrap& FromValue(const Napi::Value& value, const std::string& what);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  // The tensor; DisposedError after dispose().
  const at::Tensor& Get() const;

 private:
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value DTypeName(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value Numel(const Napi::CallbackInfo& info);
  Napi::Value Disposed(const Napi::CallbackInfo& info);
  Napi::Value Data(const Napi::CallbackInfo& info);
  Napi::Value ToFloat32Array(const Napi::CallbackInfo& info);
  Napi::Value Item(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  void Release();

  at::Tensor tensor_;
  bool disposed_ = false;
  int64_t external_bytes_ = 0;
};

}  // namespace torch_attn::tensor
