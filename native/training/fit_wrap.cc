#include "training/fit_wrap.h"

#include <atomic>
#include <memory>
#include <thread>

#include "common/addon_data.h"
#include "common/args.h"
#include "common/async.h"
#include "common/errors.h"
#include "common/type_tag.h"
#include "data/data_wrap.h"
#include "models/model_wrap.h"
#include "models/pth_reader.h"
#include "runtime/runtime.h"
#include "tensor/tensor_wrap.h"
#include "training/fit.h"
#include "training/optimizer.h"
#include "training/optimizer_wrap.h"

namespace torch_attn::training {

namespace {

constexpr napi_type_tag kControlTag = {0xc0a7c0a7f17f17f1ULL, 0x5ca1ab1e5ca1ab1eULL};

// A cancel flag JS holds and the training thread reads.
class ControlWrap : public Napi::ObjectWrap<ControlWrap>, public GuardedMethods<ControlWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FitControl",
                       {InstanceMethod("cancel", &ControlWrap::Guarded<&ControlWrap::Cancel>),
                        InstanceAccessor("cancelled", &ControlWrap::Guarded<&ControlWrap::Cancelled>, nullptr)});
  }
  static ControlWrap& FromValue(const Napi::Value& value, const std::string& what) {
    if (!HasTypeTag(value, kControlTag)) args::ThrowType(what, "a FitControl", value);
    return *Unwrap(value.As<Napi::Object>());
  }
  explicit ControlWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ControlWrap>(info) {
    SetTypeTag(info.This().As<Napi::Object>(), kControlTag);
  }
  std::shared_ptr<std::atomic<bool>> flag = std::make_shared<std::atomic<bool>>(false);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    flag->store(true);
    return info.Env().Undefined();
  }
  Napi::Value Cancelled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), flag->load()); }
};

Napi::Object RecordToJs(Napi::Env env, const EpochRecord& r, const std::vector<std::string>& labels) {
  auto o = Napi::Object::New(env);
  o.Set("stage", r.stage_name);
  o.Set("stageIndex", static_cast<double>(r.stage));
  o.Set("epoch", static_cast<double>(r.epoch));
  o.Set("trainLoss", r.train_loss);
  o.Set("trainAcc", r.train_acc);
  if (r.has_test) {
    o.Set("testLoss", r.test_loss);
    o.Set("testTop1", r.test_top1);
    o.Set("testTop5", r.test_top5);
  }
  auto lr = Napi::Object::New(env);
  for (size_t g = 0; g < r.lr.size(); ++g) lr.Set(labels[g], r.lr[g]);
  o.Set("lr", lr);
  o.Set("seconds", r.seconds);
  o.Set("imagesPerSecond", r.images_per_second);
  return o;
}

FitPlan ReadPlan(const Napi::Value& value) {
  if (!value.IsObject()) args::ThrowType("fitStage plan", "an object", value);
  auto o = value.As<Napi::Object>();
  FitPlan p;
  p.stage = args::Integer(o.Get("stage"), "plan.stage", 0, 1 << 20);
  p.stage_name = args::String(o.Get("stageName"), "plan.stageName");
  p.first_epoch = args::Integer(o.Get("firstEpoch"), "plan.firstEpoch", 0, int64_t{1} << 40);
  p.epochs = args::Integer(o.Get("epochs"), "plan.epochs", 0, int64_t{1} << 40);
  p.start_batch = args::IntegerField(o, "startBatch", 0, 0, int64_t{1} << 40);
  p.step = args::Integer(o.Get("step"), "plan.step", 0, int64_t{1} << 50);
  p.table_start = args::Integer(o.Get("tableStart"), "plan.tableStart", 0, int64_t{1} << 50);
  p.group_labels = args::Strings(o.Get("groupLabels"), "plan.groupLabels");
  Napi::Value table = o.Get("lrTable");
  if (!table.IsTypedArray() || table.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    args::ThrowType("plan.lrTable", "a Float64Array", table);
  }
  auto t = table.As<Napi::Float64Array>();
  p.lr_table.assign(t.Data(), t.Data() + t.ElementLength());
  for (double lr : p.lr_table) {
    if (!std::isfinite(lr) || lr < 0) throw RangeError("plan.lrTable: learning rates must be finite and non-negative");
  }
  p.step_options.label_smoothing(args::NumberField(o, "labelSmoothing", 0))
      .nam_sparsity(args::NumberField(o, "namSparsity", 0))
      .grad_clip(args::NumberField(o, "gradClip", 0));
  p.log_every = args::IntegerField(o, "logEvery", 100, 0, int64_t{1} << 40);
  p.checkpoint_dir = args::StringField(o, "checkpointDir", "");
  p.history_json = args::StringField(o, "historyJson", "[]");
  p.run_json = args::StringField(o, "runJson", "{}");
  p.best_metric = args::NumberField(o, "bestMetric", -1);
  p.best_epoch = args::IntegerField(o, "bestEpoch", 0, 0, int64_t{1} << 40);
  Napi::Value partial = o.Get("partial");
  if (partial.IsObject()) {
    auto q = partial.As<Napi::Object>();
    p.partial.loss_sum = args::NumberField(q, "lossSum", 0);
    p.partial.correct = args::IntegerField(q, "correct", 0, 0, int64_t{1} << 50);
    p.partial.count = args::IntegerField(q, "count", 0, 0, int64_t{1} << 50);
    p.partial.seconds = args::NumberField(q, "seconds", 0);
  }
  return p;
}

// One running stage. Owned jointly by the training thread and the thread-safe function.
struct FitJob {
  std::shared_ptr<models::ModelImpl> model;
  std::shared_ptr<torch::optim::Optimizer> optimizer;
  std::shared_ptr<data::Loader> train, test;
  FitPlan plan;
  std::shared_ptr<std::atomic<bool>> cancel, busy;
  Napi::ThreadSafeFunction events;
  Napi::Promise::Deferred deferred;
  std::thread thread;
  FitOutcome outcome;
  std::exception_ptr error;
  std::atomic<bool> finished{false};

  explicit FitJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}
};

// What the training thread posts to the main thread.
struct Event {
  enum Kind { kBatch, kEpoch, kDone } kind;
  BatchEvent batch;
  EpochRecord record;
};

void Deliver(Napi::Env env, Napi::Function on_event, FitJob* job, Event* event) {
  std::unique_ptr<Event> owned(event);
  if (env == nullptr) return;  // the environment is going away
  try {
    Napi::HandleScope scope(env);
    if (event->kind == Event::kDone) {
      job->busy->store(false);
      if (job->error) {
        try {
          std::rethrow_exception(job->error);
        } catch (...) {
          job->deferred.Reject(CurrentExceptionToJs(env).Value());
        }
        return;
      }
      const FitOutcome& o = job->outcome;
      auto r = Napi::Object::New(env);
      r.Set("cancelled", o.cancelled);
      r.Set("nextEpoch", static_cast<double>(o.next_epoch));
      r.Set("nextBatch", static_cast<double>(o.next_batch));
      r.Set("step", static_cast<double>(o.step));
      r.Set("bestMetric", o.best_metric);
      r.Set("bestEpoch", static_cast<double>(o.best_epoch));
      if (!o.checkpoint.empty()) r.Set("checkpoint", o.checkpoint);
      job->deferred.Resolve(r);
      return;
    }
    auto e = Napi::Object::New(env);
    if (event->kind == Event::kBatch) {
      e.Set("type", "batch");
      e.Set("epoch", static_cast<double>(event->batch.epoch));
      e.Set("batch", static_cast<double>(event->batch.batch));
      e.Set("batches", static_cast<double>(event->batch.batches));
      e.Set("loss", event->batch.loss);
      e.Set("meanLoss", event->batch.mean_loss);
    } else {
      e.Set("type", "epoch");
      e.Set("record", RecordToJs(env, event->record, job->plan.group_labels));
    }
    on_event.Call({e});
  } catch (...) {
    // A throwing listener must not take the training down; the error surfaces in JS as an
    // uncaught exception only if Node reports it, never as a crash here.
  }
}

Napi::Promise StartFit(Napi::Env env, models::ModelWrap& model, OptimizerWrap& opt, data::LoaderWrap& train,
                       std::shared_ptr<data::Loader> test, FitPlan plan, ControlWrap& control, Napi::Function on_event);

// fitStage(model, optimizer, trainLoader, testLoader | null, plan, control, onEvent) -> Promise<outcome>
Napi::Value FitStage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& model = models::ModelWrap::FromValue(info[0], "fit model");
  auto& opt = OptimizerWrap::FromValue(info[1], "fit optimizer");
  if (opt.model() != model.shared()) throw TypeError("fit: the optimizer was made for another model");
  auto& train = data::LoaderWrap::FromValue(info[2], "fit train loader");
  std::shared_ptr<data::Loader> test;
  if (!info[3].IsNull() && !info[3].IsUndefined()) test = data::LoaderWrap::FromValue(info[3], "fit test loader").loader();
  FitPlan plan = ReadPlan(info[4]);
  plan.optimizer_type = opt.type();
  auto& control = ControlWrap::FromValue(info[5], "fit control");
  if (!info[6].IsFunction()) args::ThrowType("fit onEvent", "a function", info[6]);
  if (static_cast<size_t>(opt.Get().param_groups().size()) != plan.group_labels.size()) {
    throw RangeError("fit: the plan names " + std::to_string(plan.group_labels.size()) + " groups, the optimizer has " +
                     std::to_string(opt.Get().param_groups().size()));
  }
  model.Claim("fit");
  try {
    return StartFit(env, model, opt, train, test, std::move(plan), control, info[6].As<Napi::Function>());
  } catch (...) {
    model.busy_flag()->store(false);  // nothing started: the model is free again
    throw;
  }
}

Napi::Promise StartFit(Napi::Env env, models::ModelWrap& model, OptimizerWrap& opt, data::LoaderWrap& train,
                       std::shared_ptr<data::Loader> test, FitPlan plan, ControlWrap& control, Napi::Function on_event) {
  auto job = std::make_shared<FitJob>(env);
  job->model = model.shared();
  job->optimizer = opt.shared();
  job->train = train.loader();
  job->test = test;
  job->plan = std::move(plan);
  job->cancel = control.flag;
  job->busy = model.busy_flag();
  auto promise = job->deferred.Promise();
  auto* keep = new std::shared_ptr<FitJob>(job);
  job->events = Napi::ThreadSafeFunction::New(
      env, on_event, "torch-attn fit", 0, 1, keep, [](Napi::Env, std::shared_ptr<FitJob>* held) {
        // Runs on the main thread once the training thread has released the function, or when
        // the environment is torn down (then the stage is cancelled and awaited first).
        if (!(*held)->finished.load()) (*held)->cancel->store(true);
        if ((*held)->thread.joinable()) (*held)->thread.join();
        delete held;
      });
  job->thread = std::thread([job] {
    FitJob* j = job.get();
    FitCallbacks callbacks;
    auto post = [j](Event* e) {
      if (j->events.BlockingCall(e, [j](Napi::Env env, Napi::Function fn, Event* ev) { Deliver(env, fn, j, ev); }) != napi_ok) {
        delete e;
      }
    };
    callbacks.on_batch = [post](const BatchEvent& b) { post(new Event{Event::kBatch, b, {}}); };
    callbacks.on_epoch = [post](const EpochRecord& r) { post(new Event{Event::kEpoch, {}, r}); };
    try {
      j->outcome = RunStage(*j->model, *j->optimizer, *j->train, j->test.get(), j->plan, *j->cancel, callbacks);
    } catch (...) {
      j->error = std::current_exception();
    }
    j->finished.store(true);
    post(new Event{Event::kDone, {}, {}});
    j->events.Release();
  });
  return promise;
}

// evaluate(model, loader, keepProbabilities) -> Promise<{ lossSum, count, top1, top5, classes, confusion, probabilities?, labels? }>
Napi::Value EvaluateJs(const Napi::CallbackInfo& info) {
  auto& model = models::ModelWrap::FromValue(info[0], "evaluate model");
  auto loader = data::LoaderWrap::FromValue(info[1], "evaluate loader").loader();
  const bool keep = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  model.Claim("evaluate");
  auto shared = model.shared();
  auto busy = model.busy_flag();
  return PromiseWorker<EvalResult>::StartCompute(
      info.Env(), info[0].As<Napi::Object>(), [shared, loader, keep] { return Evaluate(*shared, *loader, keep, nullptr); },
      [](Napi::Env env, EvalResult& r) -> Napi::Value {
        auto o = Napi::Object::New(env);
        o.Set("lossSum", r.loss_sum);
        o.Set("count", static_cast<double>(r.count));
        o.Set("top1", static_cast<double>(r.top1));
        o.Set("top5", static_cast<double>(r.top5));
        o.Set("classes", static_cast<double>(r.classes));
        auto confusion = Napi::Float64Array::New(env, r.confusion.size());
        for (size_t i = 0; i < r.confusion.size(); ++i) confusion[i] = static_cast<double>(r.confusion[i]);
        o.Set("confusion", confusion);
        if (!r.probabilities.empty()) {
          auto probs = Napi::Float32Array::New(env, r.probabilities.size());
          std::copy(r.probabilities.begin(), r.probabilities.end(), probs.Data());
          o.Set("probabilities", probs);
          auto labels = Napi::Int32Array::New(env, r.labels.size());
          for (size_t i = 0; i < r.labels.size(); ++i) labels[i] = static_cast<int32_t>(r.labels[i]);
          o.Set("labels", labels);
        }
        return o;
      },
      [busy] { busy->store(false); });
}

Napi::Value CreateControl(const Napi::CallbackInfo& info) {
  return GetAddonData(info.Env()).control_constructor.New({});
}

// readTrainingCheckpoint(path) -> Promise<{ section: { name: Tensor } }>
Napi::Value ReadTrainingCheckpoint(const Napi::CallbackInfo& info) {
  std::string path = args::String(info[0], "readTrainingCheckpoint(path)");
  using Sections = std::vector<std::pair<std::string, models::NamedTensors>>;
  return PromiseWorker<Sections>::Start(
      info.Env(), Napi::Object::New(info.Env()), [path] { return models::ReadPthSections(path); },
      [](Napi::Env env, Sections& sections) -> Napi::Value {
        auto out = Napi::Object::New(env);
        for (auto& [name, tensors] : sections) out.Set(name, tensor::NamedTensorsToJs(env, tensors));
        return out;
      },
      nullptr);
}

// loadOptimizerState(optimizer, { "<param>.<field>": Tensor })
Napi::Value LoadOptimizerState(const Napi::CallbackInfo& info) {
  auto& opt = OptimizerWrap::FromValue(info[0], "loadOptimizerState(optimizer)");
  auto state = tensor::NamedTensorsFromJs(info[1], "loadOptimizerState(state)");
  LoadStateByName(opt.Get(), opt.type(), *opt.model(), state);
  return info.Env().Undefined();
}

Napi::Value OptimizerStateJs(const Napi::CallbackInfo& info) {
  auto& opt = OptimizerWrap::FromValue(info[0], "optimizerState(optimizer)");
  return tensor::NamedTensorsToJs(info.Env(), StateByName(opt.Get(), opt.type(), *opt.model()));
}

// rngState() -> uint8 Tensor; setRngState(tensor): LibTorch's default CPU generator (dropout).
Napi::Value RngState(const Napi::CallbackInfo& info) { return tensor::TensorWrap::Wrap(info.Env(), runtime::RngState()); }

Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  runtime::SetRngState(tensor::TensorWrap::FromValue(info[0], "setRngState(state)").Get());
  return info.Env().Undefined();
}

}  // namespace

void RegisterFit(Napi::Env env, Napi::Object exports) {
  GetAddonData(env).control_constructor = Napi::Persistent(ControlWrap::Define(env));
  exports.Set("createFitControl", Napi::Function::New(env, GuardedFn<&CreateControl>, "createFitControl"));
  exports.Set("fitStage", Napi::Function::New(env, GuardedFn<&FitStage>, "fitStage"));
  exports.Set("evaluate", Napi::Function::New(env, GuardedFn<&EvaluateJs>, "evaluate"));
  exports.Set("readTrainingCheckpoint", Napi::Function::New(env, GuardedFn<&ReadTrainingCheckpoint>, "readTrainingCheckpoint"));
  exports.Set("loadOptimizerState", Napi::Function::New(env, GuardedFn<&LoadOptimizerState>, "loadOptimizerState"));
  exports.Set("optimizerState", Napi::Function::New(env, GuardedFn<&OptimizerStateJs>, "optimizerState"));
  exports.Set("rngState", Napi::Function::New(env, GuardedFn<&RngState>, "rngState"));
  exports.Set("setRngState", Napi::Function::New(env, GuardedFn<&SetRngState>, "setRngState"));
}

}  // namespace torch_attn::training
