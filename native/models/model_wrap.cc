#include "models/model_wrap.h"

#include "common/addon_data.h"
#include "common/args.h"
#include "common/async.h"
#include "common/type_tag.h"
#include "models/resnet.h"
#include "models/state_dict.h"
#include "models/vgg.h"
#include "modules/nam.h"
#include "training/optimizer_wrap.h"
#include "training/train_step.h"

#include <limits>
#include "tensor/dtype.h"
#include "tensor/tensor_core.h"
#include "tensor/tensor_wrap.h"

namespace torch_attn::models {

namespace {

constexpr napi_type_tag kModelTag = {0x4d0de1a77e2f5b13ULL, 0x9c1b3d5e7f80a2c4ULL};

// The spec object comes from the TypeScript builders, which have validated it; the field
// readers re-check it to guard the addon against direct calls.
using args::BooleanField;
using args::IntegerField;
using args::StringField;

modules::AttentionOptions ReadAttention(const Napi::Object& spec, const std::string& fallback_kind) {
  modules::AttentionOptions o;
  Napi::Value v = spec.Get("attention");
  if (v.IsUndefined()) return o.kind(fallback_kind);
  if (!v.IsObject()) args::ThrowType("attention", "an options object", v);
  auto a = v.As<Napi::Object>();
  o.kind(StringField(a, "kind", fallback_kind));
  o.ratio(IntegerField(a, "ratio", 16, 1, 1 << 20));
  o.kernel_size(IntegerField(a, "kernelSize", 7, 1, 31));
  o.passthrough(BooleanField(a, "passthrough", false));
  o.detach_weights(BooleanField(a, "detachWeights", false));
  o.pixel_size(IntegerField(a, "pixelSize", 0, 0, 1 << 24));
  o.eca_gamma(IntegerField(a, "ecaGamma", 2, 1, 64));
  o.eca_b(IntegerField(a, "ecaB", 1, 0, 64));
  o.mlp_bias(BooleanField(a, "mlpBias", false));
  o.spatial_max_first(StringField(a, "spatialPoolOrder", "mean-max") == "max-mean");
  o.spatial_bn(StringField(a, "spatialNorm", "none") == "bn");
  o.spatial(BooleanField(a, "spatial", true));
  Napi::Value pools = a.Get("poolTypes");
  if (!pools.IsUndefined()) o.pool_types(args::Strings(pools, "poolTypes"));  // ValidateAttention checks each
  return o;
}

std::shared_ptr<ModelImpl> BuildModel(const Napi::Value& value) {
  if (!value.IsObject()) args::ThrowType("createModel() spec", "an object", value);
  auto spec = value.As<Napi::Object>();
  std::string arch = StringField(spec, "arch", "");
  int64_t classes = IntegerField(spec, "numClasses", 10, 1, 1 << 24);
  if (arch == "resnet") {
    ResNetOptions o;
    o.depth(IntegerField(spec, "depth", 18, 0, 1000)).num_classes(classes);
    o.stem(StringField(spec, "stem", "cifar")).placement(StringField(spec, "placement", "stage"));
    o.attention(ReadAttention(spec, "cbam"));
    if (o.attention().pixel_size() > 0) throw RangeError("NAM's pixel variant is available on a standalone NAM module only");
    Napi::Value stages = spec.Get("stages");
    if (!stages.IsUndefined()) o.stages(args::Shape(stages, "stages"));
    return MakeResNet(o);
  }
  if (arch == "vgg") {
    VggOptions o;
    o.depth(IntegerField(spec, "depth", 16, 0, 1000)).num_classes(classes).batch_norm(BooleanField(spec, "batchNorm", true));
    o.stem(StringField(spec, "stem", "cifar")).attention(ReadAttention(spec, "cbam"));
    if (o.attention().pixel_size() > 0) throw RangeError("NAM's pixel variant is available on a standalone NAM module only");
    return MakeVgg(o);
  }
  if (arch == "cbamcnn") {
    CbamCnnOptions o;
    o.num_classes(classes).attention(ReadAttention(spec, "cbam"));
    return MakeCbamCnn(o);
  }
  if (arch == "attention") {
    int64_t channels = IntegerField(spec, "channels", 0, 1, 1 << 20);
    return std::make_shared<StandaloneAttentionImpl>(ReadAttention(spec, "cbam"), channels);
  }
  throw RangeError("createModel() arch must be 'resnet', 'vgg', 'cbamcnn' or 'attention', got '" + arch + "'");
}

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  auto model = BuildModel(info[0]);
  auto& ctor = GetAddonData(info.Env()).model_constructor;
  return ctor.New({Napi::External<std::shared_ptr<ModelImpl>>::New(info.Env(), &model)});
}

c10::Device DeviceOf(const torch::nn::Module& model) {
  auto params = model.parameters();
  return params.empty() ? c10::Device(c10::kCPU) : params.front().device();
}

// An input tensor moved to the model's device and dtype (the model checks rank and channels).
torch::Tensor PrepareInput(const torch::Tensor& x, const torch::nn::Module& model) {
  if (!at::isFloatingType(x.scalar_type())) {
    throw TypeError("model input must be a floating-point tensor (float32), got " + std::string(c10::toString(x.scalar_type())) +
                    "; convert images with toTensor() or tensor(..., { dtype: 'float32' })");
  }
  return x.to(DeviceOf(model), at::kFloat);
}

Napi::Object ReportToJs(Napi::Env env, const LoadReport& report) {
  auto out = Napi::Object::New(env);
  auto strings = [&](const std::vector<std::string>& names) {
    auto arr = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) arr.Set(static_cast<uint32_t>(i), names[i]);
    return arr;
  };
  out.Set("missing", strings(report.missing));
  out.Set("unexpected", strings(report.unexpected));
  auto mismatched = Napi::Array::New(env, report.mismatched.size());
  for (size_t i = 0; i < report.mismatched.size(); ++i) {
    auto m = Napi::Object::New(env);
    m.Set("name", report.mismatched[i].name);
    m.Set("expected", tensor::ShapeToJs(env, report.mismatched[i].expected));
    m.Set("got", tensor::ShapeToJs(env, report.mismatched[i].got));
    mismatched.Set(static_cast<uint32_t>(i), m);
  }
  out.Set("mismatched", mismatched);
  return out;
}

// Runs fn in eval mode with gradients off, restoring the previous mode afterwards.
template <typename Fn>
auto InEvalMode(ModelImpl& model, Fn&& fn) {
  bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  try {
    auto result = fn();
    model.ApplyTrainingMode(was_training);
    return result;
  } catch (...) {
    model.ApplyTrainingMode(was_training);
    throw;
  }
}

Napi::Value ReadStateDictJs(const Napi::CallbackInfo& info) {
  std::string path = args::String(info[0], "readStateDict(path)");
  return PromiseWorker<NamedTensors>::Start(
      info.Env(), Napi::Object::New(info.Env()), [path] { return ReadPth(path); },
      [](Napi::Env env, NamedTensors& tensors) { return Napi::Value(tensor::NamedTensorsToJs(env, tensors)); },
      nullptr);
}

// encodePth({ name: Tensor }) -> Buffer with the bytes of a .pth file (written to disk by the
// TypeScript layer, atomically).
Napi::Value EncodePthJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject() || info[0].IsArray()) args::ThrowType("encodePth() tensors", "an object of name -> Tensor", info[0]);
  std::vector<char> bytes = EncodePth(tensor::NamedTensorsFromJs(info[0], "encodePth()"));
  return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
}

}  // namespace

void ModelWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "Model",
      {
          InstanceMethod("forward", &ModelWrap::Guarded<&ModelWrap::Forward>),
          InstanceMethod("predict", &ModelWrap::Guarded<&ModelWrap::Predict>),
          InstanceMethod("attentionMaps", &ModelWrap::Guarded<&ModelWrap::AttentionMaps>),
          InstanceMethod("train", &ModelWrap::Guarded<&ModelWrap::Train>),
          InstanceAccessor("training", &ModelWrap::Guarded<&ModelWrap::Training>, nullptr),
          InstanceAccessor("description", &ModelWrap::Guarded<&ModelWrap::Describe>, nullptr),
          InstanceAccessor("device", &ModelWrap::Guarded<&ModelWrap::Device>, nullptr),
          InstanceMethod("to", &ModelWrap::Guarded<&ModelWrap::To>),
          InstanceMethod("namedParameters", &ModelWrap::Guarded<&ModelWrap::NamedParameters>),
          InstanceMethod("namedBuffers", &ModelWrap::Guarded<&ModelWrap::NamedBuffers>),
          InstanceMethod("parameterCount", &ModelWrap::Guarded<&ModelWrap::ParameterCount>),
          InstanceMethod("summary", &ModelWrap::Guarded<&ModelWrap::Summary>),
          InstanceMethod("stateDict", &ModelWrap::Guarded<&ModelWrap::StateDict>),
          InstanceMethod("loadStateDict", &ModelWrap::Guarded<&ModelWrap::LoadStateDict>),
          InstanceMethod("namScalingFactors", &ModelWrap::Guarded<&ModelWrap::NamScalingFactors>),
          InstanceMethod("namSparsityPenalty", &ModelWrap::Guarded<&ModelWrap::NamSparsityPenalty>),
          InstanceMethod("setRequiresGrad", &ModelWrap::Guarded<&ModelWrap::SetRequiresGrad>),
          InstanceMethod("setFrozenBatchNorms", &ModelWrap::Guarded<&ModelWrap::SetFrozenBatchNorms>),
          InstanceMethod("trainStep", &ModelWrap::Guarded<&ModelWrap::TrainStep>),
      });
  GetAddonData(env).model_constructor = Napi::Persistent(ctor);
  exports.Set("Model", ctor);
  exports.Set("createModel", Napi::Function::New(env, GuardedFn<&CreateModel>, "createModel"));
  exports.Set("readStateDict", Napi::Function::New(env, GuardedFn<&ReadStateDictJs>, "readStateDict"));
  exports.Set("encodePth", Napi::Function::New(env, GuardedFn<&EncodePthJs>, "encodePth"));
}

ModelWrap& ModelWrap::FromValue(const Napi::Value& value, const std::string& what) {
  if (!HasTypeTag(value, kModelTag)) args::ThrowType(what, "a model", value);
  return *ObjectWrap<ModelWrap>::Unwrap(value.As<Napi::Object>());
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Model cannot be constructed with new here: use the model builders (resnet(), vgg(), new ResNetCBAM(), ...)");
  }
  model_ = *info[0].As<Napi::External<std::shared_ptr<ModelImpl>>>().Data();
  SetTypeTag(info.This().As<Napi::Object>(), kModelTag);
}

ModelImpl& ModelWrap::Model() {
  if (busy_->load()) {
    throw BusyError("the model is busy with " + busy_job_ + "(); await it before using the model again");
  }
  return *model_;
}

void ModelWrap::Claim(const char* job) {
  Model();
  busy_->store(true);
  busy_job_ = job;
}

// Synchronous, but computed on the compute thread like every other model job (the main thread
// waits): one OpenMP team and one malloc arena for all of LibTorch's work, as in Python.
Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  auto& model = Model();
  auto x = PrepareInput(tensor::TensorWrap::FromValue(info[0], "forward(x)").Get(), model);
  torch::Tensor out;
  std::exception_ptr error;
  compute::Run([&] {
    try {
      runtime::ApplyNumThreads();
      torch::NoGradGuard no_grad;
      out = model.Forward(x, nullptr);
    } catch (...) {
      error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  return tensor::TensorWrap::Wrap(info.Env(), out);
}

Napi::Value ModelWrap::Predict(const Napi::CallbackInfo& info) {
  auto& model = Model();
  torch::Tensor x = PrepareInput(tensor::TensorWrap::FromValue(info[0], "predict(x)").Get(), model);
  int64_t batch = info[1].IsUndefined() ? 256 : args::Integer(info[1], "predict() batchSize", 1, 1 << 20);
  model.CheckInput(x);
  Claim("predict");
  auto shared = model_;
  auto busy = busy_;
  return PromiseWorker<torch::Tensor>::StartCompute(
      info.Env(), info.This().As<Napi::Object>(),
      [shared, x, batch] {
        return InEvalMode(*shared, [&] {
          std::vector<torch::Tensor> outputs;
          for (int64_t start = 0; start < x.size(0); start += batch) {
            outputs.push_back(shared->Forward(x.slice(0, start, std::min(x.size(0), start + batch)), nullptr));
          }
          return torch::cat(outputs).to(c10::kCPU);
        });
      },
      [](Napi::Env env, torch::Tensor& out) { return Napi::Value(tensor::TensorWrap::Wrap(env, out)); },
      [busy] { busy->store(false); });
}

Napi::Value ModelWrap::AttentionMaps(const Napi::CallbackInfo& info) {
  auto* standalone = dynamic_cast<StandaloneAttentionImpl*>(&Model());
  if (standalone == nullptr) throw TypeError("attentionMaps() is a method of attention modules (CBAM, NAM, SE, ECA)");
  torch::NoGradGuard no_grad;
  auto x = PrepareInput(tensor::TensorWrap::FromValue(info[0], "attentionMaps(x)").Get(), *standalone);
  auto out = Napi::Object::New(info.Env());
  for (auto& [name, map] : standalone->Maps(x)) out.Set(name, tensor::TensorWrap::Wrap(info.Env(), map));
  return out;
}

Napi::Value ModelWrap::Train(const Napi::CallbackInfo& info) {
  Model().ApplyTrainingMode(info[0].IsUndefined() ? true : args::Boolean(info[0], "train(mode)"));
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Training(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Model().is_training());  // a job flips the mode while it runs
}

Napi::Value ModelWrap::Describe(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), model_->Describe()); }

Napi::Value ModelWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensor::DeviceName(DeviceOf(*model_)));
}

Napi::Value ModelWrap::To(const Napi::CallbackInfo& info) {
  auto device = tensor::ParseDevice(args::String(info[0], "to() device"));
  Model().to(device);
  return info.This();
}

Napi::Value ModelWrap::NamedParameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto params = Model().named_parameters();
  auto out = Napi::Array::New(env, params.size());
  uint32_t i = 0;
  for (const auto& p : params) {
    auto row = Napi::Object::New(env);
    row.Set("name", p.key());
    row.Set("shape", tensor::ShapeToJs(env, p.value().sizes()));
    row.Set("requiresGrad", p.value().requires_grad());
    out.Set(i++, row);
  }
  return out;
}

Napi::Value ModelWrap::NamedBuffers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto buffers = Model().named_buffers();
  auto out = Napi::Array::New(env, buffers.size());
  uint32_t i = 0;
  for (const auto& b : buffers) {
    auto row = Napi::Object::New(env);
    row.Set("name", b.key());
    row.Set("shape", tensor::ShapeToJs(env, b.value().sizes()));
    row.Set("dtype", tensor::DTypeOf(b.value().scalar_type()).name);
    out.Set(i++, row);
  }
  return out;
}

Napi::Value ModelWrap::ParameterCount(const Napi::CallbackInfo& info) {
  bool trainable_only = info[0].IsUndefined() ? false : args::Boolean(info[0], "trainableOnly");
  int64_t count = 0;
  for (const auto& p : Model().parameters()) {
    if (!trainable_only || p.requires_grad()) count += p.numel();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

Napi::Value ModelWrap::Summary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto& model = Model();
  auto shape = args::Shape(info[0], "summary() input shape");
  tensor::NumelOf(shape, "summary() input shape");
  Trace trace;
  InEvalMode(model, [&] {
    model.Forward(torch::zeros(shape, torch::TensorOptions().device(DeviceOf(model))), &trace);
    return 0;
  });
  auto rows = Napi::Array::New(env, trace.rows().size());
  for (size_t i = 0; i < trace.rows().size(); ++i) {
    const auto& r = trace.rows()[i];
    auto row = Napi::Object::New(env);
    row.Set("name", r.name);
    row.Set("type", r.type);
    row.Set("outputShape", tensor::ShapeToJs(env, r.output_shape));
    row.Set("params", static_cast<double>(r.params));
    row.Set("trainable", static_cast<double>(r.trainable));
    rows.Set(static_cast<uint32_t>(i), row);
  }
  return rows;
}

Napi::Value ModelWrap::StateDict(const Napi::CallbackInfo& info) {
  auto out = Napi::Object::New(info.Env());
  for (auto& [name, tensor] : models::StateDict(Model())) out.Set(name, tensor::TensorWrap::Wrap(info.Env(), tensor));
  return out;
}

Napi::Value ModelWrap::LoadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Model();
  bool strict = info[1].IsUndefined() ? true : args::Boolean(info[1], "loadStateDict() strict");
  auto shared = model_;
  auto busy = busy_;
  auto to_js = [](Napi::Env env, LoadReport& report) { return Napi::Value(ReportToJs(env, report)); };
  if (info[0].IsString()) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    Claim("loadStateDict");
    return PromiseWorker<LoadReport>::Start(
        env, info.This().As<Napi::Object>(), [shared, path, strict] { return LoadStateDictFrom(*shared, path, strict); },
        to_js, [busy] { busy->store(false); });
  }
  if (!info[0].IsObject() || info[0].IsArray()) {
    args::ThrowType("loadStateDict() source", "a file path or an object of name -> Tensor", info[0]);
  }
  auto tensors = tensor::NamedTensorsFromJs(info[0], "loadStateDict()");
  auto report = models::LoadStateDict(*model_, tensors, strict);
  auto deferred = Napi::Promise::Deferred::New(env);
  deferred.Resolve(ReportToJs(env, report));
  return deferred.Promise();
}

Napi::Value ModelWrap::NamScalingFactors(const Napi::CallbackInfo& info) {
  auto factors = modules::NamScalingFactors(Model());
  auto out = Napi::Array::New(info.Env(), factors.size());
  for (size_t i = 0; i < factors.size(); ++i) out.Set(static_cast<uint32_t>(i), factors[i].first);
  return out;
}

}  // namespace torch_attn::models

namespace torch_attn::models {

Napi::Value ModelWrap::NamSparsityPenalty(const Napi::CallbackInfo& info) {
  double lambda = args::Number(info[0], "namSparsityPenalty(lambda)");
  if (lambda < 0) throw RangeError("namSparsityPenalty(lambda): lambda must be at least 0, got " + std::to_string(lambda));
  return Napi::Number::New(info.Env(), modules::NamSparsityPenalty(Model(), lambda));
}

}  // namespace torch_attn::models

namespace torch_attn::models {

// setRequiresGrad(names, flag): the freezing primitive; the TS layer resolves groups to names.
Napi::Value ModelWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  auto names = args::Strings(info[0], "setRequiresGrad(names)");
  bool flag = args::Boolean(info[1], "setRequiresGrad(flag)");
  auto params = Model().named_parameters();
  for (const auto& name : names) {
    if (params.find(name) == nullptr) throw RangeError("'" + name + "' is not a parameter of " + model_->Describe());
  }
  for (const auto& name : names) params[name].set_requires_grad(flag);
  return info.Env().Undefined();
}

Napi::Value ModelWrap::SetFrozenBatchNorms(const Napi::CallbackInfo& info) {
  Model().SetFrozenBatchNorms(args::Strings(info[0], "setFrozenBatchNorms(names)"));
  return info.Env().Undefined();
}

// trainStep(optimizer, x, labels, { labelSmoothing, namSparsity, gradClip }) -> Promise<{ loss, correct, count }>
Napi::Value ModelWrap::TrainStep(const Napi::CallbackInfo& info) {
  auto& model = Model();
  auto& opt = training::OptimizerWrap::FromValue(info[0], "trainStep() optimizer");
  if (opt.model() != model_) throw TypeError("trainStep(): the optimizer was made for another model");
  auto optimizer = opt.shared();
  opt.Get();
  torch::Tensor x = PrepareInput(tensor::TensorWrap::FromValue(info[1], "trainStep() x").Get(), model);
  torch::Tensor labels = tensor::TensorWrap::FromValue(info[2], "trainStep() labels").Get();
  model.CheckInput(x);
  training::CheckLabels(labels, x.size(0), std::numeric_limits<int64_t>::max());
  training::StepOptions options;
  if (info[3].IsObject()) {
    auto o = info[3].As<Napi::Object>();
    options.label_smoothing(args::NumberField(o, "labelSmoothing", 0))
        .nam_sparsity(args::NumberField(o, "namSparsity", 0))
        .grad_clip(args::NumberField(o, "gradClip", 0));
  }
  Claim("trainStep");
  auto shared = model_;
  auto busy = busy_;
  return PromiseWorker<training::StepResult>::StartCompute(
      info.Env(), info.This().As<Napi::Object>(),
      [shared, optimizer, x, labels, options] { return training::TrainStep(*shared, *optimizer, x, labels, options); },
      [](Napi::Env env, training::StepResult& r) {
        auto out = Napi::Object::New(env);
        out.Set("loss", r.loss);
        out.Set("correct", static_cast<double>(r.correct));
        out.Set("count", static_cast<double>(r.count));
        return Napi::Value(out);
      },
      [busy] { busy->store(false); });
}

}  // namespace torch_attn::models
