// The JS-visible Optimizer: one LibTorch optimizer over a model's named parameter groups.
// It shares its model's job slot, so it is never touched while a step runs.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "common/claim.h"
#include "common/js_errors.h"
#include "common/no_dangling.h"
#include "models/model.h"
#include "training/grad_scaler.h"
#include "training/optimizer.h"

namespace torch_attn::training {

// A group object ({ params, lr, weightDecay, momentum, ... }) as the core's GroupOptions.
GroupOptions ReadGroupOptions(const Napi::Value& value, const std::string& what);

class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap>, public GuardedMethods<OptimizerWrap> {
 public:
  // Marks this class's JS objects: a look-alike, or another class's object, is refused.
  static constexpr napi_type_tag kTypeTag = {0x0a7e1c3b5d9f2468ULL, 0x13579bdf2468ace0ULL};
  static void Register(Napi::Env env, Napi::Object exports);
  TA_NO_DANGLING static OptimizerWrap& FromValue(const Napi::Value& value, const std::string& what);

  explicit OptimizerWrap(const Napi::CallbackInfo& info);

  // The optimizer for use on the main thread; BusyError while a step runs.
  torch::optim::Optimizer& Get();
  std::shared_ptr<torch::optim::Optimizer> shared() const { return optimizer_; }
  const std::shared_ptr<models::ModelImpl>& model() const { return model_; }
  const std::string& type() const { return type_; }
  // The loss scaler of fp16 steps taken with this optimizer (PyTorch users keep one GradScaler
  // beside their optimizer; here the optimizer holds it).
  std::shared_ptr<GradScaler> scaler() const { return scaler_; }

 private:
  Napi::Value GroupCount(const Napi::CallbackInfo& info);
  Napi::Value GetLr(const Napi::CallbackInfo& info);
  Napi::Value SetLr(const Napi::CallbackInfo& info);
  Napi::Value AddGroup(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value LossScale(const Napi::CallbackInfo& info);
  Napi::Value Fused(const Napi::CallbackInfo& info);

  size_t GroupIndex(const Napi::Value& value, const char* what);

  std::string type_;
  std::shared_ptr<models::ModelImpl> model_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  std::shared_ptr<JobSlot> slot_;
  std::shared_ptr<GradScaler> scaler_ = std::make_shared<GradScaler>();
};

}  // namespace torch_attn::training
