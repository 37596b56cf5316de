#include "runtime/compute.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "runtime/owned_threads.h"
#include "runtime/runtime.h"

namespace torch_attn::runtime {

namespace {

class Thread {
 public:
  Thread() : thread_([this] { Loop(); }) {
    thread_.detach();
    // At process exit, let the task in hand finish (it may be inside a LibTorch kernel), give up
    // the queued ones and take no more; the thread itself stays parked, never destroyed. A given-up
    // task's caller (a libuv pool thread, which process.exit() joins) returns with an error
    // instead of waiting for ever.
    OwnThread(nullptr, [this] {
      std::unique_lock<std::mutex> lock(mutex_);
      stopping_ = true;
      for (Task* task : queue_) Finish(*task, false);
      queue_.clear();
      idle_.wait(lock, [&] { return !running_; });
    });
  }

  void Run(const std::function<void()>& fn) {
    Task task(&fn);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) ThrowExiting();
      queue_.push_back(&task);
    }
    cv_.notify_one();
    std::unique_lock<std::mutex> lock(task.mutex);
    task.cv.wait(lock, [&] { return task.finished; });
    if (!task.ran) ThrowExiting();
  }

 private:
  // One Run() call's job; it lives on the caller's stack until the caller is told it finished.
  struct Task {
    explicit Task(const std::function<void()>* job) : fn(job) {}
    const std::function<void()>* fn;
    std::mutex mutex;
    std::condition_variable cv;
    bool finished = false, ran = false;
  };

  [[noreturn]] static void ThrowExiting() {
    throw std::runtime_error("torch-attn: the process is exiting; the job was not run");
  }

  static void Finish(Task& task, bool ran) {
    std::lock_guard<std::mutex> lock(task.mutex);
    task.ran = ran;
    task.finished = true;
    task.cv.notify_one();
  }

  void Loop() {
    for (;;) {
      Task* task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return !queue_.empty() && !stopping_; });
        task = queue_.front();
        queue_.pop_front();
        running_ = true;
      }
      ApplyNumThreads();
      (*task->fn)();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        running_ = false;
      }
      idle_.notify_all();
      Finish(*task, true);
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_, idle_;
  bool running_ = false, stopping_ = false;
  std::deque<Task*> queue_;
  std::thread thread_;
};

}  // namespace

void RunOnComputeThread(const std::function<void()>& fn) {
  // One per process, shared by every JS context; never destroyed (it may be busy at exit).
  static Thread* thread = new Thread();
  thread->Run(fn);
}

void RunHere(const std::function<void()>& fn) {
  RunKernelsAlone();
  fn();
}

}  // namespace torch_attn::runtime
