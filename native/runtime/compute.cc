#include "runtime/compute.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "runtime/owned_threads.h"
#include "runtime/runtime.h"

namespace torch_attn::runtime {

namespace {

class Thread {
 public:
  Thread() : thread_([this] { Loop(); }) {
    thread_.detach();
    // At process exit, let the task in hand finish (it may be inside a LibTorch kernel) and
    // take no more; the thread itself stays parked, never destroyed.
    OwnThread(nullptr, [this] {
      std::unique_lock<std::mutex> lock(mutex_);
      stopping_ = true;
      idle_.wait(lock, [&] { return !running_; });
    });
  }

  void Run(const std::function<void()>& fn) {
    std::mutex done_mutex;
    std::condition_variable done_cv;
    bool done = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back([&] {
        ApplyNumThreads();
        fn();
        std::lock_guard<std::mutex> l(done_mutex);
        done = true;
        done_cv.notify_one();
      });
    }
    cv_.notify_one();
    std::unique_lock<std::mutex> lock(done_mutex);
    done_cv.wait(lock, [&] { return done; });
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return !queue_.empty() && !stopping_; });
        task = std::move(queue_.front());
        queue_.pop_front();
        running_ = true;
      }
      task();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        running_ = false;
      }
      idle_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_, idle_;
  bool running_ = false, stopping_ = false;
  std::deque<std::function<void()>> queue_;
  std::thread thread_;
};

}  // namespace

void RunOnComputeThread(const std::function<void()>& fn) {
  // One per process, shared by every JS context; never destroyed (it may be busy at exit).
  static Thread* thread = new Thread();
  thread->Run(fn);
}

}  // namespace torch_attn::runtime
