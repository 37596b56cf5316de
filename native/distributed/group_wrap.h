// The JS-visible ProcessGroup: a shared core Group. Made by native.initProcessGroup(options),
// which rendezvouses off the JS thread; collectives return promises and new tensors.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "common/js_errors.h"
#include "distributed/group.h"

namespace torch_attn::distributed {

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap>, public GuardedMethods<ProcessGroupWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x5d1c7e3a9b0f4682ULL, 0x2b4d6f8091a3c5e7ULL};
  static void Register(Napi::Env env, Napi::Object exports);
  // The group behind a JS value; TypeError when it is anything else (checked by type tag).
  static std::shared_ptr<Group> FromValue(const Napi::Value& value, const std::string& what);

  // A new JS ProcessGroup for `group`.
  static Napi::Object New(Napi::Env env, std::shared_ptr<Group> group);

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Rank(const Napi::CallbackInfo& info);
  Napi::Value WorldSize(const Napi::CallbackInfo& info);
  Napi::Value LocalRank(const Napi::CallbackInfo& info);
  Napi::Value Backend(const Napi::CallbackInfo& info);
  Napi::Value Destroyed(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value AllReduce(const Napi::CallbackInfo& info);
  Napi::Value Broadcast(const Napi::CallbackInfo& info);
  Napi::Value AllGather(const Napi::CallbackInfo& info);
  Napi::Value Destroy(const Napi::CallbackInfo& info);

  // The group (the receiver's type was checked by GuardedMethod/GuardedGetter); TypeError for an
  // object made by `new ProcessGroup()` rather than distributed.init().
  std::shared_ptr<Group> Get(const std::string& what) const;

  std::shared_ptr<Group> group_;
};

}  // namespace torch_attn::distributed
