// The wrap layer's half of errors: any C++ exception (the core's types in common/errors.h,
// c10::Error, std::bad_alloc, ...) as a short JS Error, and the guards every N-API entry
// point goes through so nothing reaches N-API untranslated.
#pragma once

#include <napi.h>

#include "common/errors.h"
#include "common/type_tag.h"

namespace torch_attn {

// Converts the exception being handled (call only inside a catch block) into a JS error.
Napi::Error CurrentExceptionToJs(Napi::Env env);

// Runs fn, turning any C++ exception into a thrown JS error.
template <typename Fn>
Napi::Value Guard(Napi::Env env, Fn&& fn) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw CurrentExceptionToJs(env);
  }
}

// An ObjectWrap's instance methods and accessors, each routed through Guard:
//   TensorWrap::GuardedMethod<&TensorWrap::Data>("data"), TensorWrap::GuardedGetter<&TensorWrap::Shape>("shape")
// First `this` must carry T's type tag (T::kTypeTag): V8 checks the receiver of methods, not of
// getters, and a getter taken from one class's prototype and called on another class's object
// would read that object as a T. The check runs in a static callback, before anything treats
// `this` as a T (node-addon-api's own InstanceMethod/InstanceAccessor call a member function on
// whatever the receiver wraps, which is undefined behaviour for a foreign receiver).
template <typename T>
struct GuardedMethods {
  template <Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
  static Napi::ClassPropertyDescriptor<T> GuardedMethod(const char* name) {
    return napi_property_descriptor{name, nullptr, &Call<Method>, nullptr, nullptr, nullptr, napi_default, nullptr};
  }
  template <Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
  static Napi::ClassPropertyDescriptor<T> GuardedGetter(const char* name) {
    return napi_property_descriptor{name, nullptr, nullptr, &Call<Method>, nullptr, nullptr, napi_default, nullptr};
  }

 private:
  template <Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
  static napi_value Call(napi_env env, napi_callback_info callback_info) {
    Napi::CallbackInfo info(env, callback_info);
    try {
      if (!HasTypeTag(info.This(), T::kTypeTag)) {
        throw Napi::TypeError::New(info.Env(), "Illegal invocation: the receiver is not the native object this method belongs to");
      }
      T* self = T::Unwrap(info.This().As<Napi::Object>());
      return Guard(info.Env(), [&] { return (self->*Method)(info); });
    } catch (const Napi::Error& e) {
      e.ThrowAsJavaScriptException();
      return nullptr;
    }
  }
};

// The same for free functions: Napi::Function::New(env, GuardedFn<&BuildInfo>, "buildInfo").
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value GuardedFn(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Fn(info); });
}

}  // namespace torch_attn
