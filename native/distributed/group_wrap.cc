#include "distributed/group_wrap.h"

#include "common/addon_data.h"
#include "common/args.h"
#include "common/async.h"
#include "common/type_tag.h"
#include "tensor/tensor_wrap.h"

namespace torch_attn::distributed {

namespace {

// initProcessGroup({ backend, masterAddr, masterPort, rank, worldSize, localRank, timeoutMs })
//   -> Promise<ProcessGroup>, once every rank has joined. TypeScript reads torchrun's environment.
Napi::Value InitProcessGroup(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) args::ThrowType("initProcessGroup() options", "an object", info[0]);
  auto o = info[0].As<Napi::Object>();
  GroupOptions options;
  options.backend = args::StringField(o, "backend", "gloo");
  options.master_addr = args::StringField(o, "masterAddr", "127.0.0.1");
  options.master_port = args::IntegerField(o, "masterPort", 29500, 1, 65535);
  options.world_size = args::IntegerField(o, "worldSize", 1, 1, 1 << 20);
  options.rank = args::IntegerField(o, "rank", 0, 0, 1 << 20);
  options.local_rank = args::IntegerField(o, "localRank", 0, 0, 1 << 20);
  options.timeout = std::chrono::milliseconds(args::IntegerField(o, "timeoutMs", 1800 * 1000, 1, int64_t{1} << 40));
  auto env = info.Env();
  return PromiseWorker<std::shared_ptr<Group>>::Start(
      env, Napi::Object::New(env), Claim(), [options] { return Group::Create(options); },
      [](Napi::Env env, std::shared_ptr<Group>& group) { return Napi::Value(ProcessGroupWrap::New(env, group)); },
      nullptr);
}

Napi::Value BackendNames(const Napi::CallbackInfo& info) {
  auto names = AvailableBackends();
  auto out = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
  return out;
}

}  // namespace

void ProcessGroupWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "ProcessGroup",
      {
          ProcessGroupWrap::GuardedGetter<&ProcessGroupWrap::Rank>("rank"),
          ProcessGroupWrap::GuardedGetter<&ProcessGroupWrap::WorldSize>("worldSize"),
          ProcessGroupWrap::GuardedGetter<&ProcessGroupWrap::LocalRank>("localRank"),
          ProcessGroupWrap::GuardedGetter<&ProcessGroupWrap::Backend>("backend"),
          ProcessGroupWrap::GuardedGetter<&ProcessGroupWrap::Destroyed>("destroyed"),
          ProcessGroupWrap::GuardedMethod<&ProcessGroupWrap::Barrier>("barrier"),
          ProcessGroupWrap::GuardedMethod<&ProcessGroupWrap::AllReduce>("allReduce"),
          ProcessGroupWrap::GuardedMethod<&ProcessGroupWrap::Broadcast>("broadcast"),
          ProcessGroupWrap::GuardedMethod<&ProcessGroupWrap::AllGather>("allGather"),
          ProcessGroupWrap::GuardedMethod<&ProcessGroupWrap::Destroy>("destroy"),
      });
  GetAddonData(env).process_group_constructor = Napi::Persistent(ctor);
  exports.Set("ProcessGroup", ctor);
  exports.Set("initProcessGroup", Napi::Function::New(env, GuardedFn<&InitProcessGroup>, "initProcessGroup"));
  exports.Set("distributedBackends", Napi::Function::New(env, GuardedFn<&BackendNames>, "distributedBackends"));
}

std::shared_ptr<Group> ProcessGroupWrap::FromValue(const Napi::Value& value, const std::string& what) {
  if (!HasTypeTag(value, ProcessGroupWrap::kTypeTag)) args::ThrowType(what, "a ProcessGroup (from distributed.init())", value);
  return Unwrap(value.As<Napi::Object>())->Get(what);
}

std::shared_ptr<Group> ProcessGroupWrap::Get(const std::string& what) const {
  if (!group_) throw TypeError(what + " is an uninitialised ProcessGroup (use distributed.init())");
  return group_;
}

Napi::Object ProcessGroupWrap::New(Napi::Env env, std::shared_ptr<Group> group) {
  auto object = GetAddonData(env).process_group_constructor.New({});
  Unwrap(object)->group_ = std::move(group);
  return object;
}

ProcessGroupWrap::ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
  SetTypeTag(info.This().As<Napi::Object>(), ProcessGroupWrap::kTypeTag);
}

Napi::Value ProcessGroupWrap::Rank(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get("this")->rank()));
}
Napi::Value ProcessGroupWrap::WorldSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get("this")->world_size()));
}
Napi::Value ProcessGroupWrap::LocalRank(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Get("this")->options().local_rank));
}
Napi::Value ProcessGroupWrap::Backend(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Get("this")->options().backend);
}
Napi::Value ProcessGroupWrap::Destroyed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Get("this")->destroyed());
}

Napi::Value ProcessGroupWrap::Barrier(const Napi::CallbackInfo& info) {
  auto group = Get("this");
  return PromiseWorker<bool>::Start(
      info.Env(), info.This().As<Napi::Object>(), Claim(), [group] { group->Barrier(); return true; },
      [](Napi::Env env, bool&) { return env.Undefined(); }, nullptr);
}

// allReduce(tensor, op = 'sum') -> Promise<Tensor>: a new tensor; the argument is left as it was.
Napi::Value ProcessGroupWrap::AllReduce(const Napi::CallbackInfo& info) {
  auto group = Get("this");
  torch::Tensor t = tensor::TensorWrap::FromValue(info[0], "allReduce() tensor").Get().clone();
  const ReduceOp op = ParseReduceOp(info[1].IsUndefined() ? std::string("sum") : args::String(info[1], "allReduce() op"));
  return PromiseWorker<torch::Tensor>::Start(
      info.Env(), info.This().As<Napi::Object>(), Claim(), [group, t, op]() mutable { group->AllReduce(t, op); return t; },
      [](Napi::Env env, torch::Tensor& r) { return Napi::Value(tensor::TensorWrap::Wrap(env, r)); }, nullptr);
}

// broadcast(tensor, src = 0) -> Promise<Tensor>: src's values on every rank, in a new tensor.
Napi::Value ProcessGroupWrap::Broadcast(const Napi::CallbackInfo& info) {
  auto group = Get("this");
  torch::Tensor t = tensor::TensorWrap::FromValue(info[0], "broadcast() tensor").Get().clone();
  const int64_t src = info[1].IsUndefined() ? 0 : args::Integer(info[1], "broadcast() src", 0, group->world_size() - 1);
  return PromiseWorker<torch::Tensor>::Start(
      info.Env(), info.This().As<Napi::Object>(), Claim(), [group, t, src]() mutable { group->Broadcast(t, src); return t; },
      [](Napi::Env env, torch::Tensor& r) { return Napi::Value(tensor::TensorWrap::Wrap(env, r)); }, nullptr);
}

// allGather(tensor) -> Promise<Tensor[]>: every rank's tensor (same shape and dtype), by rank.
Napi::Value ProcessGroupWrap::AllGather(const Napi::CallbackInfo& info) {
  auto group = Get("this");
  torch::Tensor t = tensor::TensorWrap::FromValue(info[0], "allGather() tensor").Get();
  return PromiseWorker<std::vector<torch::Tensor>>::Start(
      info.Env(), info.This().As<Napi::Object>(), Claim(), [group, t] { return group->AllGather(t); },
      [](Napi::Env env, std::vector<torch::Tensor>& r) {
        auto out = Napi::Array::New(env, r.size());
        for (size_t i = 0; i < r.size(); ++i) out.Set(static_cast<uint32_t>(i), tensor::TensorWrap::Wrap(env, r[i]));
        return Napi::Value(out);
      },
      nullptr);
}

Napi::Value ProcessGroupWrap::Destroy(const Napi::CallbackInfo& info) {
  Get("this")->Destroy();
  return info.Env().Undefined();
}

}  // namespace torch_attn::distributed
