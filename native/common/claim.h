// The busy protocol, in one place: an object (a model, a loader stream) runs one asynchronous
// job at a time. A job takes a Claim when it starts (BusyError when another job holds the
// object) and the object is free again when the Claim is released or destroyed, however the
// job ends. While a job's thread is blocked in a callback to JS (a fine-tuner between stages),
// the object may be paused: read, not used for work.
// Shared claims are for jobs that only read the object (inference): any number of them hold it
// together, and an exclusive job (training, a load) is refused while they do, and they while it
// runs. Claims are taken and released on the JS thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "common/errors.h"

namespace torch_attn {

class JobSlot {
 public:
  bool busy() const { return busy_.load() || shared_.load() > 0; }
  bool paused() const { return paused_.load(); }
  // BusyError naming the running job; `pausable` accesses (reads) pass while the job is paused
  // and while shared (reading) jobs run.
  void CheckFree(const std::string& object, bool pausable = false) const {
    CheckShareable(object, pausable);
    if (!pausable && shared_.load() > 0) {
      throw BusyError(object + " is busy with " + std::to_string(shared_.load()) + " running " + shared_job_ +
                      " call(s); await them first (inference calls may overlap each other, not training or loading)");
    }
  }
  // BusyError while an exclusive job holds the object (what a shared job checks).
  void CheckShareable(const std::string& object, bool pausable = false) const {
    if (busy_.load() && !(pausable && paused_.load())) {
      throw BusyError(object + " is busy with " + job_ + "; await it first");
    }
  }

 private:
  friend class Claim;
  std::atomic<bool> busy_{false}, paused_{false};
  std::atomic<int> shared_{0};
  std::string job_, shared_job_;  // set and read on the JS thread only
};

class Claim {
 public:
  enum Kind { kExclusive, kShared };
  Claim() = default;
  // Claims `slot` for `job` (shown in the busy message, e.g. "fit()").
  Claim(std::shared_ptr<JobSlot> slot, const std::string& object, std::string job, Kind kind = kExclusive) : shared_(kind == kShared) {
    if (shared_) {
      slot->CheckShareable(object);
      slot->shared_.fetch_add(1);
      slot->shared_job_ = std::move(job);
    } else {
      slot->CheckFree(object);
      slot->busy_.store(true);
      slot->job_ = std::move(job);
    }
    slot_ = std::move(slot);
  }
  Claim(Claim&& other) noexcept : slot_(std::move(other.slot_)), shared_(other.shared_) {}
  Claim& operator=(Claim&& other) noexcept {
    if (this != &other) {
      Release();
      slot_ = std::move(other.slot_);
      shared_ = other.shared_;
    }
    return *this;
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim() { Release(); }

  void Release() {
    if (!slot_) return;
    if (shared_) {
      slot_->shared_.fetch_sub(1);
    } else {
      slot_->paused_.store(false);
      slot_->busy_.store(false);
    }
    slot_.reset();
  }
  // While paused, pausable accesses (reads) of the object are allowed.
  void SetPaused(bool paused) {
    if (slot_) slot_->paused_.store(paused);
  }

 private:
  std::shared_ptr<JobSlot> slot_;
  bool shared_ = false;
};

}  // namespace torch_attn
