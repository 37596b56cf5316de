// The JS-visible Model: owns one native model (any architecture, or a single attention
// module), runs forward passes, async predict and checkpoint loads, and refuses a second job
// while one is running.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/errors.h"
#include "models/model.h"

namespace torch_attn::models {

class ModelWrap : public Napi::ObjectWrap<ModelWrap>, public GuardedMethods<ModelWrap> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  // The model behind a JS value; TypeError when it is anything else.
  static ModelWrap& FromValue(const Napi::Value& value, const std::string& what);

  explicit ModelWrap(const Napi::CallbackInfo& info);

  // The model for synchronous use; BusyError while async work runs on it.
  ModelImpl& Model();
  std::shared_ptr<ModelImpl> shared() const { return model_; }
  std::shared_ptr<std::atomic<bool>> busy_flag() const { return busy_; }
  // Marks the model busy for async work named `job`; BusyError if it already is.
  void Claim(const char* job);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value AttentionMaps(const Napi::CallbackInfo& info);
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value Training(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value NamedParameters(const Napi::CallbackInfo& info);
  Napi::Value NamedBuffers(const Napi::CallbackInfo& info);
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value Summary(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value NamScalingFactors(const Napi::CallbackInfo& info);
  Napi::Value NamSparsityPenalty(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value SetFrozenBatchNorms(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelImpl> model_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
  std::string busy_job_;
};

}  // namespace torch_attn::models
