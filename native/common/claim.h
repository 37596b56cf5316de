// The busy protocol, in one place: an object (a model, a loader stream) runs one asynchronous
// job at a time. A job takes a Claim when it starts (BusyError when another job holds the
// object) and the object is free again when the Claim is released or destroyed, however the
// job ends. While a job's thread is blocked in a callback to JS (a fine-tuner between stages),
// the object may be paused: read, not used for work.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "common/errors.h"

namespace torch_attn {

class JobSlot {
 public:
  bool busy() const { return busy_.load(); }
  bool paused() const { return paused_.load(); }
  // BusyError naming the running job; `pausable` accesses (reads) pass while the job is paused.
  void CheckFree(const std::string& object, bool pausable = false) const {
    if (busy_.load() && !(pausable && paused_.load())) {
      throw BusyError(object + " is busy with " + job_ + "; await it first");
    }
  }

 private:
  friend class Claim;
  std::atomic<bool> busy_{false}, paused_{false};
  std::string job_;  // set and read on the JS thread only
};

class Claim {
 public:
  Claim() = default;
  // Claims `slot` for `job` (shown in the busy message, e.g. "fit()").
  Claim(std::shared_ptr<JobSlot> slot, const std::string& object, std::string job) {
    slot->CheckFree(object);
    slot->busy_.store(true);
    slot->job_ = std::move(job);
    slot_ = std::move(slot);
  }
  Claim(Claim&& other) noexcept : slot_(std::move(other.slot_)) {}
  Claim& operator=(Claim&& other) noexcept {
    if (this != &other) {
      Release();
      slot_ = std::move(other.slot_);
    }
    return *this;
  }
  Claim(const Claim&) = delete;
  Claim& operator=(const Claim&) = delete;
  ~Claim() { Release(); }

  void Release() {
    if (slot_) {
      slot_->paused_.store(false);
      slot_->busy_.store(false);
      slot_.reset();
    }
  }
  // While paused, pausable accesses (reads) of the object are allowed.
  void SetPaused(bool paused) {
    if (slot_) slot_->paused_.store(paused);
  }

 private:
  std::shared_ptr<JobSlot> slot_;
};

}  // namespace torch_attn
