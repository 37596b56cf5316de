#include "common/js_errors.h"

#include <c10/util/Exception.h>

#include <exception>
#include <new>

namespace torch_attn {

namespace {

Napi::Error WithCode(Napi::Error error, const char* code) {
  error.Set("code", Napi::String::New(error.Env(), code));
  return error;
}

// LibTorch's enforce failures start with "[enforce fail at file.cpp:75] cond. ": noise for a JS user.
std::string WithoutEnforcePrefix(std::string message) {
  if (message.rfind("[enforce fail at", 0) == 0) {
    size_t end = message.find("] ");
    size_t dot = end == std::string::npos ? end : message.find(". ", end);
    if (dot != std::string::npos) message = message.substr(dot + 2);
  }
  return message;
}

bool IsOutOfMemory(const std::string& message) {
  return message.find("can't allocate memory") != std::string::npos ||
         message.find("out of memory") != std::string::npos;
}

}  // namespace

Napi::Error CurrentExceptionToJs(Napi::Env env) {
  try {
    throw;
  } catch (const TypeError& e) {
    return Napi::TypeError::New(env, e.what());
  } catch (const RangeError& e) {
    return Napi::RangeError::New(env, e.what());
  } catch (const DisposedError& e) {
    return WithCode(Napi::Error::New(env, e.what()), "ERR_TORCH_ATTN_DISPOSED");
  } catch (const CheckpointError& e) {
    return WithCode(Napi::Error::New(env, e.what()), "ERR_TORCH_ATTN_CHECKPOINT");
  } catch (const DataError& e) {
    return WithCode(Napi::Error::New(env, e.what()), "ERR_TORCH_ATTN_DATA");
  } catch (const OutOfMemoryError& e) {
    return WithCode(Napi::RangeError::New(env, e.what()), "ERR_TORCH_ATTN_OOM");
  } catch (const BusyError& e) {
    return WithCode(Napi::Error::New(env, e.what()), "ERR_TORCH_ATTN_BUSY");
  } catch (const DistributedError& e) {
    return WithCode(Napi::Error::New(env, e.what()), "ERR_TORCH_ATTN_DISTRIBUTED");
  } catch (const c10::IndexError& e) {
    return WithCode(Napi::RangeError::New(env, ShortTorchMessage(e.what_without_backtrace())),
                    "ERR_TORCH_ATTN_LIBTORCH");
  } catch (const c10::Error& e) {
    std::string message = ShortTorchMessage(WithoutEnforcePrefix(e.what_without_backtrace()));
    if (IsOutOfMemory(message)) return WithCode(Napi::RangeError::New(env, message), "ERR_TORCH_ATTN_OOM");
    return WithCode(Napi::Error::New(env, message), "ERR_TORCH_ATTN_LIBTORCH");
  } catch (const std::bad_alloc&) {
    return WithCode(Napi::RangeError::New(env, "out of memory: the allocation could not be made"),
                    "ERR_TORCH_ATTN_OOM");
  } catch (const std::exception& e) {
    return Napi::Error::New(env, ShortTorchMessage(e.what()));
  } catch (...) {
    return Napi::Error::New(env, "unknown native error");
  }
}

}  // namespace torch_attn
