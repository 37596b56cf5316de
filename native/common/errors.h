// Errors: the exception types core code throws for bad arguments, and the one place that turns
// any C++ exception into a short JS Error.
#pragma once

#include <napi.h>

#include <stdexcept>
#include <string>

namespace torch_attn {

// Thrown by core code (no N-API types) when an argument has the wrong type: becomes a JS TypeError.
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Thrown when an argument has the right type but a value outside what is allowed: a JS RangeError.
struct RangeError : std::out_of_range {
  using std::out_of_range::out_of_range;
};

// A file that is not a readable checkpoint (truncated, corrupt, wrong format, code in a pickle)
// or a state dict that does not fit: a JS Error with code ERR_TORCH_ATTN_CHECKPOINT.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A data file or image that cannot be read (missing, truncated, wrong format, undecodable):
// a JS Error with code ERR_TORCH_ATTN_DATA.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown when an object is busy with asynchronous work: a JS Error with code ERR_TORCH_ATTN_BUSY.
struct BusyError : std::logic_error {
  using std::logic_error::logic_error;
};

// Thrown when an object is used after dispose(): a JS Error with code ERR_TORCH_ATTN_DISPOSED.
struct DisposedError : std::logic_error {
  using std::logic_error::logic_error;
};

// The first lines of a LibTorch message, without the C++ backtrace and "Exception raised from".
std::string ShortTorchMessage(const std::string& what);

// Converts the exception being handled (call only inside a catch block) into a JS error.
Napi::Error CurrentExceptionToJs(Napi::Env env);

// Runs fn, turning any C++ exception into a thrown JS error. Every N-API entry point goes through
// this so no exception (c10::Error included) reaches N-API untranslated.
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

// Lets an ObjectWrap route each instance method through Guard:
//   InstanceMethod("shape", &TensorWrap::Guarded<&TensorWrap::Shape>)
template <typename T>
struct GuardedMethods {
  template <Napi::Value (T::*Method)(const Napi::CallbackInfo&)>
  Napi::Value Guarded(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&] { return (static_cast<T*>(this)->*Method)(info); });
  }
};

// The same for free functions: Napi::Function::New(env, GuardedFn<&BuildInfo>, "buildInfo").
template <Napi::Value (*Fn)(const Napi::CallbackInfo&)>
Napi::Value GuardedFn(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Fn(info); });
}

}  // namespace torch_attn
