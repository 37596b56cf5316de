// The JS-visible Model: owns one native model (any architecture, or a single attention
// module), converts arguments and results for it, and refuses a second job while one runs.
// The model logic it calls is in the core (models/model.h, models/factory.h).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "common/claim.h"
#include "common/js_errors.h"
#include "common/no_dangling.h"
#include "models/model.h"
#include "training/train_step.h"

namespace torch_attn::models {

// A precision name from JS (undefined: fp32); RangeError naming `where` otherwise. Whether the
// model's device can run it is checked by the core, where the work runs.
Precision ReadPrecision(const Napi::Value& value, const std::string& where);

// A training step's options from JS (trainStep()'s options, a fine-tuner plan): labelSmoothing,
// namSparsity, gradClip, precision, syncBatchNorm, winograd; `where` names the object in errors.
training::StepOptions ReadStepOptions(const Napi::Object& o, const std::string& where);

class ModelWrap : public Napi::ObjectWrap<ModelWrap>, public GuardedMethods<ModelWrap> {
 public:
  // Marks this class's JS objects: a look-alike, or another class's object, is refused.
  static constexpr napi_type_tag kTypeTag = {0x4d0de1a77e2f5b13ULL, 0x9c1b3d5e7f80a2c4ULL};
  static void Register(Napi::Env env, Napi::Object exports);
  // The model behind a JS value; TypeError when it is anything else.
  TA_NO_DANGLING static ModelWrap& FromValue(const Napi::Value& value, const std::string& what);

  explicit ModelWrap(const Napi::CallbackInfo& info);

  // The model for synchronous use; BusyError while a job runs on it.
  ModelImpl& Model();
  // The same for inference (forward, predict, plans), which may overlap other inference jobs:
  // BusyError only while an exclusive job (training, a load) runs.
  ModelImpl& ModelForInference();
  // The same for reads (state dict, names, counts), which may also run while a job waits
  // for JS (a fine-tuner between stages).
  ModelImpl& ModelForReading();
  std::shared_ptr<ModelImpl> shared() const { return model_; }
  const std::shared_ptr<JobSlot>& slot() const { return slot_; }
  // Claims the model for the job `job` ("fit()"); BusyError while another holds it. Inference
  // jobs take shared claims: they may overlap one another (they run one after the other on the
  // compute thread), not a training job or a load.
  Claim TakeClaim(const char* job, Claim::Kind kind = Claim::kExclusive);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value PredictParts(const Napi::CallbackInfo& info);
  Napi::Value PrepareInference(const Napi::CallbackInfo& info);
  Napi::Value InferencePlan(const Napi::CallbackInfo& info);
  Napi::Value SetInferencePlans(const Napi::CallbackInfo& info);
  Napi::Value ReservePlans(const Napi::CallbackInfo& info);
  Napi::Value AttentionMaps(const Napi::CallbackInfo& info);
  Napi::Value ModelAttentionMaps(const Napi::CallbackInfo& info);
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value Training(const Napi::CallbackInfo& info);
  Napi::Value Describe(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value MemoryFormat(const Napi::CallbackInfo& info);
  Napi::Value NamedParameters(const Napi::CallbackInfo& info);
  Napi::Value NamedBuffers(const Napi::CallbackInfo& info);
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value Summary(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value NamScalingFactors(const Napi::CallbackInfo& info);
  Napi::Value NamSparsityPenalty(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value ApplyBatchNormPolicy(const Napi::CallbackInfo& info);
  Napi::Value GroupTable(const Napi::CallbackInfo& info);
  Napi::Value TrainStep(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelImpl> model_;
  std::shared_ptr<JobSlot> slot_ = std::make_shared<JobSlot>();
};

}  // namespace torch_attn::models
