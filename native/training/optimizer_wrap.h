// The JS-visible Optimizer: one LibTorch optimizer over a model's named parameter groups.
// It shares its model's busy flag, so it is never touched while a step runs.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>
#include <string>

#include "common/errors.h"
#include "models/model.h"

namespace torch_attn::training {

class OptimizerWrap : public Napi::ObjectWrap<OptimizerWrap>, public GuardedMethods<OptimizerWrap> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  static OptimizerWrap& FromValue(const Napi::Value& value, const std::string& what);

  explicit OptimizerWrap(const Napi::CallbackInfo& info);

  // The optimizer for use on the main thread; BusyError while a step runs.
  torch::optim::Optimizer& Get();
  std::shared_ptr<torch::optim::Optimizer> shared() const { return optimizer_; }
  const std::shared_ptr<models::ModelImpl>& model() const { return model_; }
  const std::string& type() const { return type_; }

 private:
  Napi::Value GroupCount(const Napi::CallbackInfo& info);
  Napi::Value GetLr(const Napi::CallbackInfo& info);
  Napi::Value SetLr(const Napi::CallbackInfo& info);
  Napi::Value AddGroup(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);

  size_t GroupIndex(const Napi::Value& value, const char* what);

  std::string type_;
  std::shared_ptr<models::ModelImpl> model_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  std::shared_ptr<std::atomic<bool>> busy_;
};

}  // namespace torch_attn::training
