// Promise-returning work off the main thread. The work runs without touching N-API (on libuv's
// pool, or handed to an executor such as the compute thread); its result is turned into JS on
// the main thread; any C++ exception rejects the promise with the same JS error a synchronous
// call would have thrown. A job's Claim on its object is released before the promise settles.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <utility>

#include "common/claim.h"
#include "common/js_errors.h"

namespace torch_attn {

// Runs a job's work somewhere and returns once it has run; nullptr: on the libuv pool thread.
using Executor = void (*)(const std::function<void()>&);

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  // `keep_alive` (the JS object the work belongs to) and `claim` are held until the promise settles.
  static Napi::Promise Start(Napi::Env env, Napi::Object keep_alive, Claim claim, Work work, ToJs to_js, Executor executor) {
    auto* worker = new PromiseWorker(env, keep_alive, std::move(claim), std::move(work), std::move(to_js), executor);
    auto promise = worker->deferred_.Promise();
    worker->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    auto run = [this] {
      try {
        result_ = work_();
      } catch (...) {
        error_ = std::current_exception();
      }
    };
    if (executor_ != nullptr) {
      executor_(run);
    } else {
      run();
    }
  }

  // Settling the promise can fail when the JS context is going away (a worker being
  // terminated while the job ran): then there is nobody to tell, and nothing may throw here.
  void OnOK() override {
    Napi::Env env = Env();
    claim_.Release();
    try {
      Napi::HandleScope scope(env);
      try {
        if (error_) std::rethrow_exception(error_);
        deferred_.Resolve(to_js_(env, result_));
      } catch (const Napi::Error& e) {
        deferred_.Reject(e.Value());
      } catch (...) {
        deferred_.Reject(CurrentExceptionToJs(env).Value());
      }
    } catch (...) {
    }
  }

  void OnError(const Napi::Error& e) override {
    claim_.Release();
    try {
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  }

 private:
  PromiseWorker(Napi::Env env, Napi::Object keep_alive, Claim claim, Work work, ToJs to_js, Executor executor)
      : Napi::AsyncWorker(env, "torch-attn"),
        deferred_(Napi::Promise::Deferred::New(env)),
        keep_alive_(Napi::Persistent(keep_alive)),
        claim_(std::move(claim)),
        work_(std::move(work)),
        to_js_(std::move(to_js)),
        executor_(executor) {}

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_alive_;
  Claim claim_;
  Work work_;
  ToJs to_js_;
  Executor executor_;
  Result result_{};
  std::exception_ptr error_;
};

}  // namespace torch_attn
