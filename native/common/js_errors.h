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

// Lets an ObjectWrap route each instance method and accessor through Guard:
//   InstanceMethod("shape", &TensorWrap::Guarded<&TensorWrap::Shape>)
// First it checks that `this` carries T's type tag (T::kTypeTag): V8 checks the receiver of
// methods, not of getters and setters, and a getter taken from one class's prototype and
// called on another class's object would otherwise read that object as a T.
template <typename T>
struct GuardedMethods {
  template <Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info) {
    if (!HasTypeTag(info.This(), T::kTypeTag)) {
      throw Napi::TypeError::New(info.Env(), "Illegal invocation: the receiver is not the native object this method belongs to");
    }
    return Guard(info.Env(), [&] { return (static_cast<T*>(this)->*Method)(info); });
  }
};

// The same for free functions: Napi::Function::New(env, GuardedFn<&BuildInfo>, "buildInfo").
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value GuardedFn(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Fn(info); });
}

}  // namespace torch_attn
