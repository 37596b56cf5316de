// Promise-returning work on libuv's thread pool. The work runs without touching N-API; its
// result is turned into JS on the main thread; any C++ exception rejects the promise with the
// same JS error a synchronous call would have thrown.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <utility>

#include "common/errors.h"
#include "runtime/runtime.h"

namespace torch_attn {

// The compute thread: one long-lived thread on which model work (predict, training steps,
// evaluation) runs, in order. LibTorch's kernels use all cores from it; keeping its work on one
// thread keeps glibc's malloc to one arena (and OpenMP to one team) for it, instead of one per
// libuv pool thread, which held twice the memory PyTorch does for the same training.
namespace compute {
// Runs fn on the compute thread and waits for it (fn must not throw).
void Run(const std::function<void()>& fn);
}  // namespace compute

template <typename Result>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<Result()>;
  using ToJs = std::function<Napi::Value(Napi::Env, Result&)>;

  // `keep_alive` (the JS object the work belongs to) is held until `done` has run.
  static Napi::Promise Start(Napi::Env env, Napi::Object keep_alive, Work work, ToJs to_js, std::function<void()> done) {
    return Begin(env, keep_alive, std::move(work), std::move(to_js), std::move(done), false);
  }
  // The same, with `work` run on the compute thread (model work).
  static Napi::Promise StartCompute(Napi::Env env, Napi::Object keep_alive, Work work, ToJs to_js, std::function<void()> done) {
    return Begin(env, keep_alive, std::move(work), std::move(to_js), std::move(done), true);
  }

 private:
  static Napi::Promise Begin(Napi::Env env, Napi::Object keep_alive, Work work, ToJs to_js, std::function<void()> done, bool compute) {
    auto* worker = new PromiseWorker(env, keep_alive, std::move(work), std::move(to_js), std::move(done));
    worker->compute_ = compute;
    auto promise = worker->deferred_.Promise();
    worker->Queue();
    return promise;
  }

 protected:
  void Execute() override {
    auto run = [this] {
      try {
        runtime::ApplyNumThreads();
        result_ = work_();
      } catch (...) {
        error_ = std::current_exception();
      }
    };
    if (compute_) {
      compute::Run(run);
    } else {
      run();
    }
  }

  // Settling the promise can fail when the JS context is going away (a worker being
  // terminated while the job ran): then there is nobody to tell, and nothing may throw here.
  void OnOK() override {
    Napi::Env env = Env();
    if (done_) done_();
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
    if (done_) done_();
    try {
      deferred_.Reject(e.Value());
    } catch (...) {
    }
  }

 private:
  PromiseWorker(Napi::Env env, Napi::Object keep_alive, Work work, ToJs to_js, std::function<void()> done)
      : Napi::AsyncWorker(env, "torch-attn"),
        deferred_(Napi::Promise::Deferred::New(env)),
        keep_alive_(Napi::Persistent(keep_alive)),
        work_(std::move(work)),
        to_js_(std::move(to_js)),
        done_(std::move(done)) {}

  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_alive_;
  Work work_;
  ToJs to_js_;
  std::function<void()> done_;
  Result result_{};
  std::exception_ptr error_;
  bool compute_ = false;
};

}  // namespace torch_attn
