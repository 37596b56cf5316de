#include "training/optimizer_wrap.h"

#include <sstream>

#include "common/addon_data.h"
#include "common/files.h"
#include "common/args.h"
#include "common/type_tag.h"
#include "models/model_wrap.h"
#include "training/fused_adam.h"
#include "training/optimizer.h"

namespace torch_attn::training {

namespace {


using args::BooleanField;
using args::NumberField;

}  // namespace

GroupOptions ReadGroupOptions(const Napi::Value& value, const std::string& what) {
  if (!value.IsObject()) args::ThrowType(what, "a group object", value);
  auto o = value.As<Napi::Object>();
  GroupOptions g;
  g.params(args::Strings(o.Get("params"), what + ".params"));
  g.lr(NumberField(o, "lr", 1e-3)).weight_decay(NumberField(o, "weightDecay", 0));
  g.momentum(NumberField(o, "momentum", 0)).dampening(NumberField(o, "dampening", 0)).nesterov(BooleanField(o, "nesterov", false));
  g.beta1(NumberField(o, "beta1", 0.9)).beta2(NumberField(o, "beta2", 0.999)).eps(NumberField(o, "eps", 1e-8));
  g.amsgrad(BooleanField(o, "amsgrad", false));
  return g;
}

namespace {

Napi::Value CreateOptimizer(const Napi::CallbackInfo& info) {
  return GetAddonData(info.Env()).optimizer_constructor.New({info[0], info[1], info[2]});
}

}  // namespace

void OptimizerWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "Optimizer",
      {
          OptimizerWrap::GuardedGetter<&OptimizerWrap::GroupCount>("groupCount"),
          OptimizerWrap::GuardedGetter<&OptimizerWrap::LossScale>("lossScale"),
          OptimizerWrap::GuardedGetter<&OptimizerWrap::Fused>("fused"),
          OptimizerWrap::GuardedMethod<&OptimizerWrap::GetLr>("getLr"),
          OptimizerWrap::GuardedMethod<&OptimizerWrap::SetLr>("setLr"),
          OptimizerWrap::GuardedMethod<&OptimizerWrap::AddGroup>("addGroup"),
          OptimizerWrap::GuardedMethod<&OptimizerWrap::ZeroGrad>("zeroGrad"),
          OptimizerWrap::GuardedMethod<&OptimizerWrap::Save>("save"),
          OptimizerWrap::GuardedMethod<&OptimizerWrap::Load>("load"),
      });
  GetAddonData(env).optimizer_constructor = Napi::Persistent(ctor);
  exports.Set("Optimizer", ctor);
  exports.Set("createOptimizer", Napi::Function::New(env, GuardedFn<&CreateOptimizer>, "createOptimizer"));
}

OptimizerWrap& OptimizerWrap::FromValue(const Napi::Value& value, const std::string& what) {
  if (!HasTypeTag(value, OptimizerWrap::kTypeTag)) args::ThrowType(what, "an Optimizer", value);
  return *ObjectWrap<OptimizerWrap>::Unwrap(value.As<Napi::Object>());
}

// new Optimizer(model, type, groups)
OptimizerWrap::OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OptimizerWrap>(info) {
  Guard(info.Env(), [&] {
    auto& model = models::ModelWrap::FromValue(info[0], "optimizer model");
    type_ = args::String(info[1], "optimizer type");
    if (!info[2].IsArray()) args::ThrowType("optimizer groups", "an Array of groups", info[2]);
    auto array = info[2].As<Napi::Array>();
    std::vector<GroupOptions> groups;
    for (uint32_t i = 0; i < array.Length(); ++i) groups.push_back(ReadGroupOptions(array.Get(i), "groups[" + std::to_string(i) + "]"));
    model_ = model.shared();
    slot_ = model.slot();
    optimizer_ = MakeOptimizer(type_, model.Model(), groups);
    SetTypeTag(info.This().As<Napi::Object>(), OptimizerWrap::kTypeTag);
    return info.Env().Undefined();
  });
}

torch::optim::Optimizer& OptimizerWrap::Get() {
  slot_->CheckFree("the optimizer's model");
  return *optimizer_;
}

size_t OptimizerWrap::GroupIndex(const Napi::Value& value, const char* what) {
  auto count = static_cast<int64_t>(Get().param_groups().size());
  return static_cast<size_t>(args::Integer(value, what, 0, count - 1));
}

Napi::Value OptimizerWrap::GroupCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(optimizer_->param_groups().size()));
}

Napi::Value OptimizerWrap::Fused(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), IsFused(*optimizer_));
}

Napi::Value OptimizerWrap::GetLr(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Get().param_groups()[GroupIndex(info[0], "getLr(group)")].options().get_lr());
}

Napi::Value OptimizerWrap::SetLr(const Napi::CallbackInfo& info) {
  size_t group = GroupIndex(info[0], "setLr(group)");
  double lr = args::Number(info[1], "setLr(lr)");
  if (lr < 0) throw RangeError("setLr(lr): lr must be at least 0, got " + std::to_string(lr));
  Get().param_groups()[group].options().set_lr(lr);
  return info.Env().Undefined();
}

Napi::Value OptimizerWrap::AddGroup(const Napi::CallbackInfo& info) {
  training::AddGroup(Get(), type_, *model_, ReadGroupOptions(info[0], "addGroup(group)"));
  return info.Env().Undefined();
}

Napi::Value OptimizerWrap::ZeroGrad(const Napi::CallbackInfo& info) {
  Get().zero_grad();
  return info.Env().Undefined();
}

Napi::Value OptimizerWrap::Save(const Napi::CallbackInfo& info) {
  std::string path = args::String(info[0], "save(path)");
  auto& optimizer = Get();
  torch::serialize::OutputArchive archive;
  optimizer.save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  const std::string data = bytes.str();
  WriteFileAtomic(path, data.data(), data.size());
  return info.Env().Undefined();
}

Napi::Value OptimizerWrap::Load(const Napi::CallbackInfo& info) {
  std::string path = args::String(info[0], "load(path)");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    throw CheckpointError("cannot read optimizer state from " + path + ": " + ShortTorchMessage(e.what_without_backtrace()));
  }
  Get().load(archive);
  return info.Env().Undefined();
}

// The fp16 loss scale and its growth count (PyTorch's GradScaler.get_scale() and
// _growth_tracker): { scale, growthTracker }.
Napi::Value OptimizerWrap::LossScale(const Napi::CallbackInfo& info) {
  Get();
  auto out = Napi::Object::New(info.Env());
  out.Set("scale", scaler_->state().scale);
  out.Set("growthTracker", static_cast<double>(scaler_->state().growth_tracker));
  return out;
}

}  // namespace torch_attn::training
