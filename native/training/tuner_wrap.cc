#include "training/tuner_wrap.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/addon_data.h"
#include "common/args.h"
#include "common/async.h"
#include "common/claim.h"
#include "common/js_errors.h"
#include "common/json_js.h"
#include "common/type_tag.h"
#include "data/data_wrap.h"
#include "distributed/group_wrap.h"
#include "models/model_wrap.h"
#include "runtime/compute.h"
#include "runtime/owned_threads.h"
#include "training/evaluate.h"
#include "training/fine_tuner.h"
#include "training/optimizer_wrap.h"
#include "training/scaler_wrap.h"

namespace torch_attn::training {

namespace {

// A cancel flag JS holds and the training thread reads.
class ControlWrap : public Napi::ObjectWrap<ControlWrap>, public GuardedMethods<ControlWrap> {
 public:
  static constexpr napi_type_tag kTypeTag = {0xc0a7c0a7f17f17f1ULL, 0x5ca1ab1e5ca1ab1eULL};
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FitControl",
                       {ControlWrap::GuardedMethod<&ControlWrap::Cancel>("cancel"),
                        ControlWrap::GuardedGetter<&ControlWrap::Cancelled>("cancelled")});
  }
  static ControlWrap& FromValue(const Napi::Value& value, const std::string& what) {
    if (!HasTypeTag(value, ControlWrap::kTypeTag)) args::ThrowType(what, "a FitControl", value);
    return *Unwrap(value.As<Napi::Object>());
  }
  explicit ControlWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ControlWrap>(info) {
    SetTypeTag(info.This().As<Napi::Object>(), ControlWrap::kTypeTag);
  }
  std::shared_ptr<std::atomic<bool>> flag = std::make_shared<std::atomic<bool>>(false);

 private:
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    flag->store(true);
    return info.Env().Undefined();
  }
  Napi::Value Cancelled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), flag->load()); }
};

TunerPlan ReadPlan(const Napi::Value& value) {
  if (!value.IsObject()) args::ThrowType("fineTune plan", "an object", value);
  auto o = value.As<Napi::Object>();
  TunerPlan p;
  p.group_labels = args::Strings(o.Get("groupLabels"), "plan.groupLabels");
  p.optimizer_type = args::String(o.Get("optimizer"), "plan.optimizer");
  Napi::Value groups = o.Get("groups");
  if (!groups.IsArray()) args::ThrowType("plan.groups", "an Array of groups", groups);
  auto g = groups.As<Napi::Array>();
  for (uint32_t i = 0; i < g.Length(); ++i) p.groups.push_back(ReadGroupOptions(g.Get(i), "plan.groups[" + std::to_string(i) + "]"));
  Napi::Value stages = o.Get("stages");
  if (!stages.IsArray()) args::ThrowType("plan.stages", "an Array of stages", stages);
  auto s = stages.As<Napi::Array>();
  for (uint32_t i = 0; i < s.Length(); ++i) {
    const std::string where = "plan.stages[" + std::to_string(i) + "]";
    Napi::Value item = s.Get(i);
    if (!item.IsObject()) args::ThrowType(where, "a stage object", item);
    auto so = item.As<Napi::Object>();
    StagePlan stage;
    stage.name = args::String(so.Get("name"), where + ".name");
    stage.epochs = args::Integer(so.Get("epochs"), where + ".epochs", 1, int64_t{1} << 40);
    for (uint8_t t : args::TypedValues<uint8_t>(so.Get("trainable"), napi_uint8_array, where + ".trainable", "a Uint8Array (1: the group trains)")) {
      stage.trainable.push_back(t != 0);
    }
    stage.lr_table = args::TypedValues<double>(so.Get("lrTable"), napi_float64_array, where + ".lrTable", "a Float64Array");
    stage.lr_per_step = args::Boolean(so.Get("lrPerStep"), where + ".lrPerStep");
    Napi::Value plateau = so.Get("plateau");
    if (!plateau.IsUndefined()) {
      if (!plateau.IsObject()) args::ThrowType(where + ".plateau", "an object", plateau);
      auto po = plateau.As<Napi::Object>();
      PlateauOptions opt;
      opt.monitor = args::StringField(po, "monitor", "testLoss");
      const std::string mode = args::StringField(po, "mode", "min");
      if (mode != "min" && mode != "max") throw RangeError(where + ".plateau.mode must be 'min' or 'max', got '" + mode + "'");
      opt.maximize = mode == "max";
      opt.factor = args::NumberField(po, "factor", 0.1);
      opt.threshold = args::NumberField(po, "threshold", 1e-4);
      opt.min_lr = args::NumberField(po, "minLr", 0);
      opt.patience = args::IntegerField(po, "patience", 10, 0, int64_t{1} << 40);
      opt.cooldown = args::IntegerField(po, "cooldown", 0, 0, int64_t{1} << 40);
      stage.plateau = opt;
    }
    p.stages.push_back(std::move(stage));
  }
  const std::string bn = args::StringField(o, "batchNorm", "eval");
  if (bn != "eval" && bn != "train") throw RangeError("plan.batchNorm must be 'eval' or 'train', got '" + bn + "'");
  p.freeze_batch_norm = bn == "eval";
  p.step_options = models::ReadStepOptions(o, "plan");
  p.scaler = ReadScalerOptions(o.Get("lossScaling"), "plan.lossScaling");
  if (!o.Get("distributed").IsUndefined()) p.group = distributed::ProcessGroupWrap::FromValue(o.Get("distributed"), "plan.distributed");
  p.log_every = args::IntegerField(o, "logEvery", 100, 0, int64_t{1} << 40);
  p.checkpoint_dir = args::StringField(o, "checkpointDir", "");
  p.resume = args::StringField(o, "resume", "");
  return p;
}

Napi::Value ResultToJs(Napi::Env env, const TunerResult& r) {
  auto o = Napi::Object::New(env);
  o.Set("cancelled", r.cancelled);
  o.Set("records", JsonToJs(env, Json(r.records)));
  auto best = Napi::Object::New(env);
  best.Set("metric", r.best_metric);
  best.Set("epoch", static_cast<double>(r.best_epoch));
  o.Set("best", best);
  if (!r.checkpoint.empty()) o.Set("checkpoint", r.checkpoint);
  if (!r.best_checkpoint.empty()) o.Set("bestCheckpoint", r.best_checkpoint);
  return o;
}

// Signalled when the main thread has handled a stage event (or dropped it): the run waits,
// unless the run is cancelled meanwhile (at process exit the main thread delivers nothing).
struct Handled {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;
  void Signal() {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
    cv.notify_all();
  }
  void Wait(const std::atomic<bool>& cancel) {
    std::unique_lock<std::mutex> lock(mutex);
    while (!done && !cancel.load()) cv.wait_for(lock, std::chrono::milliseconds(20));
  }
};

// What the training thread posts to the main thread. A stage event's `handled` is signalled
// however the event ends (delivered, dropped at teardown, or never queued).
struct Event {
  enum Kind { kStage, kBatch, kEpoch, kDone } kind;
  StageEvent stage;
  BatchEvent batch;
  EpochRecord record;
  std::shared_ptr<Handled> handled;
  ~Event() {
    if (handled) handled->Signal();
  }
};

// One running fine-tune. Owned jointly by the training thread and the thread-safe function.
struct TuneJob {
  std::shared_ptr<models::ModelImpl> model;
  std::shared_ptr<data::Loader> train, test;
  TunerPlan plan;
  std::shared_ptr<std::atomic<bool>> cancel;
  Claim claim;
  Napi::ThreadSafeFunction events;
  Napi::Promise::Deferred deferred;
  std::thread thread;
  std::mutex join_mutex;
  uint64_t owned = 0;  // its entry in runtime::OwnThread's registry
  TunerResult result;
  std::exception_ptr error;
  std::atomic<bool> finished{false};

  explicit TuneJob(Napi::Env env) : deferred(Napi::Promise::Deferred::New(env)) {}

  // Cancels the run (it stops at the next batch boundary) and waits for its thread. Called by
  // the thread-safe function's finalizer, or at process exit; safe from either, once or twice.
  void StopAndJoin() {
    if (!finished.load()) cancel->store(true);
    std::lock_guard<std::mutex> lock(join_mutex);
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
};

Napi::Object EventToJs(Napi::Env env, const Event& event, const TuneJob& job) {
  auto e = Napi::Object::New(env);
  switch (event.kind) {
    case Event::kStage: {
      e.Set("type", "stage");
      e.Set("index", static_cast<double>(event.stage.index));
      e.Set("name", event.stage.name);
      auto trainable = Napi::Array::New(env, event.stage.trainable.size());
      for (size_t g = 0; g < event.stage.trainable.size(); ++g) trainable.Set(static_cast<uint32_t>(g), Napi::Boolean::New(env, event.stage.trainable[g]));
      e.Set("trainable", trainable);
      break;
    }
    case Event::kBatch:
      e.Set("type", "batch");
      e.Set("epoch", static_cast<double>(event.batch.epoch));
      e.Set("batch", static_cast<double>(event.batch.batch));
      e.Set("batches", static_cast<double>(event.batch.batches));
      e.Set("loss", event.batch.loss);
      e.Set("meanLoss", event.batch.mean_loss);
      {
        auto lr = Napi::Object::New(env);
        for (const auto& [label, rate] : event.batch.lr) lr.Set(label, rate);
        e.Set("lr", lr);
      }
      break;
    default:
      e.Set("type", "epoch");
      e.Set("record", JsonToJs(env, Json(event.record)));
  }
  return e;
}

void Deliver(Napi::Env env, Napi::Function on_event, TuneJob* job, Event* event) {
  std::unique_ptr<Event> owned(event);
  if (env == nullptr) return;  // the environment is going away
  try {
    Napi::HandleScope scope(env);
    if (event->kind == Event::kDone) {
      job->claim.Release();
      if (job->error) {
        try {
          std::rethrow_exception(job->error);
        } catch (...) {
          job->deferred.Reject(CurrentExceptionToJs(env).Value());
        }
        return;
      }
      job->deferred.Resolve(ResultToJs(env, job->result));
      return;
    }
    // Between stages the run waits for this call: JS may read the model meanwhile.
    if (event->kind == Event::kStage) job->claim.SetPaused(true);
    on_event.Call({EventToJs(env, *event, *job)});
    job->claim.SetPaused(false);
  } catch (...) {
    // A throwing listener must not take the training down (the TS layer catches its users'
    // errors and cancels the run itself); nothing may escape into N-API here.
    job->claim.SetPaused(false);
  }
}

// fineTune(model, trainLoader, testLoader | null, plan, control, onEvent) -> Promise<result>
Napi::Value FineTune(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& model = models::ModelWrap::FromValue(info[0], "fineTune model");
  auto& train = data::LoaderWrap::FromValue(info[1], "fineTune train loader");
  std::shared_ptr<data::Loader> test;
  if (!info[2].IsNull() && !info[2].IsUndefined()) test = data::LoaderWrap::FromValue(info[2], "fineTune test loader").loader();
  TunerPlan plan = ReadPlan(info[3]);
  auto& control = ControlWrap::FromValue(info[4], "fineTune control");
  if (!info[5].IsFunction()) args::ThrowType("fineTune onEvent", "a function", info[5]);
  // The plan is checked against the model by RunFineTune, on the run's thread.
  auto job = std::make_shared<TuneJob>(env);
  job->claim = model.TakeClaim("fit()");
  job->model = model.shared();
  job->train = train.loader();
  job->test = test;
  job->plan = std::move(plan);
  job->cancel = control.flag;
  auto promise = job->deferred.Promise();
  auto* keep = new std::shared_ptr<TuneJob>(job);
  job->events = Napi::ThreadSafeFunction::New(
      env, info[5].As<Napi::Function>(), "torch-attn fineTune", 0, 1, keep, [](Napi::Env, std::shared_ptr<TuneJob>* held) {
        // Runs on the main thread once the training thread has released the function, or when
        // the environment is torn down (then the run is cancelled and awaited first).
        runtime::ReleaseThread((*held)->owned);
        (*held)->StopAndJoin();
        delete held;
      });
  job->thread = std::thread([job] {
    TuneJob* j = job.get();
    auto post = [j](Event* e) {
      if (j->events.BlockingCall(e, [j](Napi::Env env, Napi::Function fn, Event* ev) { Deliver(env, fn, j, ev); }) != napi_ok) {
        delete e;
      }
    };
    TunerEvents events;
    events.on_stage = [post, j](const StageEvent& s) {
      auto handled = std::make_shared<Handled>();
      post(new Event{Event::kStage, s, {}, {}, handled});
      handled->Wait(*j->cancel);
    };
    events.on_batch = [post](const BatchEvent& b) { post(new Event{Event::kBatch, {}, b, {}, nullptr}); };
    events.on_epoch = [post](const EpochRecord& r) { post(new Event{Event::kEpoch, {}, {}, r, nullptr}); };
    try {
      j->result = RunFineTune(*j->model, *j->train, j->test.get(), j->plan, *j->cancel, events);
    } catch (...) {
      j->error = std::current_exception();
    }
    j->finished.store(true);
    post(new Event{Event::kDone, {}, {}, {}, nullptr});
    j->events.Release();
  });
  // Registered after the thread exists; the registry holds the job only weakly (the job owns
  // the thread, and the thread-safe function owns the job).
  std::weak_ptr<TuneJob> weak = job;
  job->owned = runtime::OwnThread(&GetAddonData(env), [weak] {
    if (auto held = weak.lock()) held->StopAndJoin();
  });
  return promise;
}

// evaluate(model, loader, keepProbabilities, precision, progress?) -> Promise<{ lossSum, count, top1, top5, classes, confusion, probabilities?, labels? }>
// progress: an Int32Array over a SharedArrayBuffer whose element 0 the evaluation stores the
// images done in (JS reads it with Atomics.load); the buffer is kept alive until the promise settles.
Napi::Value EvaluateJs(const Napi::CallbackInfo& info) {
  auto& model = models::ModelWrap::FromValue(info[0], "evaluate model");
  auto loader = data::LoaderWrap::FromValue(info[1], "evaluate loader").loader();
  const bool keep = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  const auto precision = models::ReadPrecision(info[3], "evaluate() precision");
  int32_t* counter = nullptr;
  std::shared_ptr<Napi::ObjectReference> keep_alive;
  if (!info[4].IsUndefined()) {
    bool shared_buffer = false;
    if (info[4].IsTypedArray() && info[4].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
      auto array = info[4].As<Napi::Int32Array>();
      // A SharedArrayBuffer cannot be detached or moved: its memory outlives JS's use of it while held.
      napi_value buffer = array.ArrayBuffer();
      Napi::Value global_sab = info.Env().Global().Get("SharedArrayBuffer");
      bool is_sab = false;
      if (global_sab.IsFunction()) napi_instanceof(info.Env(), buffer, global_sab, &is_sab);
      shared_buffer = is_sab && array.ElementLength() >= 1;
      if (shared_buffer) {
        counter = array.Data();
        keep_alive = std::make_shared<Napi::ObjectReference>(Napi::Persistent(array.As<Napi::Object>()));
      }
    }
    if (!shared_buffer) args::ThrowType("evaluate() progress", "an Int32Array over a SharedArrayBuffer", info[4]);
  }
  auto shared = model.shared();
  return PromiseWorker<EvalResult>::Start(
      info.Env(), info[0].As<Napi::Object>(), model.TakeClaim("evaluate()"),
      [shared, loader, keep, precision, counter] { return Evaluate(*shared, *loader, keep, nullptr, precision, counter); },
      [keep_alive](Napi::Env env, EvalResult& r) -> Napi::Value {
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
      runtime::RunOnComputeThread);
}

Napi::Value CreateControl(const Napi::CallbackInfo& info) {
  return GetAddonData(info.Env()).control_constructor.New({});
}

// readTrainingProgress(path) -> Promise<progress>: a training checkpoint's training.progress.
Napi::Value ReadTrainingProgress(const Napi::CallbackInfo& info) {
  std::string path = args::String(info[0], "readTrainingProgress(path)");
  return PromiseWorker<Progress>::Start(
      info.Env(), Napi::Object::New(info.Env()), Claim(),
      [path] { return ReadTrainingCheckpoint(path).progress; },
      [](Napi::Env env, Progress& p) { return JsonToJs(env, Json(p)); }, runtime::RunHere);
}

// epochRecordFields() -> [{ name, optional }]: the fields of the native epoch record, in order
// (what the TypeScript EpochRecord type mirrors; a test compares them).
Napi::Value EpochRecordFields(const Napi::CallbackInfo& info) {
  EpochRecord full, bare;
  full.has_test = true;
  full.loss_scaled = true;
  const Json with = full, without = bare;
  auto out = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const auto& [key, value] : with.items()) {
    auto field = Napi::Object::New(info.Env());
    field.Set("name", key);
    field.Set("optional", !without.contains(key));
    out.Set(i++, field);
  }
  return out;
}

}  // namespace

void RegisterTuner(Napi::Env env, Napi::Object exports) {
  GetAddonData(env).control_constructor = Napi::Persistent(ControlWrap::Define(env));
  exports.Set("createFitControl", Napi::Function::New(env, GuardedFn<&CreateControl>, "createFitControl"));
  exports.Set("fineTune", Napi::Function::New(env, GuardedFn<&FineTune>, "fineTune"));
  exports.Set("evaluate", Napi::Function::New(env, GuardedFn<&EvaluateJs>, "evaluate"));
  exports.Set("readTrainingProgress", Napi::Function::New(env, GuardedFn<&ReadTrainingProgress>, "readTrainingProgress"));
  exports.Set("epochRecordFields", Napi::Function::New(env, GuardedFn<&EpochRecordFields>, "epochRecordFields"));
}

}  // namespace torch_attn::training
