#include "training/scaler_wrap.h"

#include "common/args.h"
#include "common/js_errors.h"
#include "tensor/tensor_wrap.h"

namespace torch_attn::training {

ScalerOptions ReadScalerOptions(const Napi::Value& value, const std::string& what) {
  ScalerOptions options;
  if (value.IsUndefined()) return options;
  if (!value.IsObject()) args::ThrowType(what, "an object", value);
  auto o = value.As<Napi::Object>();
  options.init_scale(args::NumberField(o, "initScale", options.init_scale()))
      .growth_factor(args::NumberField(o, "growthFactor", options.growth_factor()))
      .backoff_factor(args::NumberField(o, "backoffFactor", options.backoff_factor()))
      .growth_interval(args::IntegerField(o, "growthInterval", options.growth_interval(), 1, int64_t{1} << 40));
  return options;
}

namespace {

// gradScalerSteps(steps: Tensor[][], options?) -> [{ foundInf, scale, growthTracker }]: for each
// step, unscales its gradients in place, then updates the scale, as a training step does.
Napi::Value GradScalerSteps(const Napi::CallbackInfo& info) {
  if (!info[0].IsArray()) args::ThrowType("gradScalerSteps() steps", "an Array of Arrays of tensors", info[0]);
  GradScaler scaler(ReadScalerOptions(info[1], "gradScalerSteps() options"));
  auto steps = info[0].As<Napi::Array>();
  auto out = Napi::Array::New(info.Env(), steps.Length());
  for (uint32_t i = 0; i < steps.Length(); ++i) {
    Napi::Value step = steps.Get(i);
    if (!step.IsArray()) args::ThrowType("gradScalerSteps() steps[" + std::to_string(i) + "]", "an Array of tensors", step);
    auto list = step.As<Napi::Array>();
    std::vector<torch::Tensor> grads;
    for (uint32_t j = 0; j < list.Length(); ++j) {
      grads.push_back(tensor::TensorWrap::FromValue(list.Get(j), "gradScalerSteps() gradient").Get());
    }
    const bool found = scaler.Unscale(grads);
    scaler.Update(found);
    auto r = Napi::Object::New(info.Env());
    r.Set("foundInf", found);
    r.Set("scale", scaler.state().scale);
    r.Set("growthTracker", static_cast<double>(scaler.state().growth_tracker));
    out.Set(i, r);
  }
  return out;
}

}  // namespace

void RegisterScaler(Napi::Env env, Napi::Object exports) {
  exports.Set("gradScalerSteps", Napi::Function::New(env, GuardedFn<&GradScalerSteps>, "gradScalerSteps"));
}

}  // namespace torch_attn::training
