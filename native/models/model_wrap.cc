#include "models/model_wrap.h"

#include <limits>

#include "common/addon_data.h"
#include "common/args.h"
#include "common/async.h"
#include "common/type_tag.h"
#include "distributed/group_wrap.h"
#include "models/factory.h"
#include "models/pth_writer.h"
#include "models/state_dict.h"
#include "models/winograd.h"
#include "models/winograd_training.h"
#include "modules/nam.h"
#include "runtime/compute.h"
#include "tensor/dtype.h"
#include "tensor/tensor_core.h"
#include "tensor/tensor_wrap.h"
#include "training/optimizer_wrap.h"
#include "training/train_step.h"

namespace torch_attn::models {

namespace {

// fn() computed on the compute thread while the calling (JS) thread waits, its exception rethrown
// here: LibTorch's work runs on the threads setNumThreads asks for (the JS thread runs kernels
// alone, runtime.h) and in the one OpenMP team, as every model job does.
template <typename Fn>
auto OnComputeThread(Fn&& fn) -> decltype(fn()) {
  decltype(fn()) out;
  std::exception_ptr error;
  runtime::RunOnComputeThread([&] {
    try {
      out = fn();
    } catch (...) {
      error = std::current_exception();
    }
  });
  if (error) std::rethrow_exception(error);
  return out;
}

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

ModelSpec ReadSpec(const Napi::Value& value) {
  if (!value.IsObject()) args::ThrowType("createModel() spec", "an object", value);
  auto spec = value.As<Napi::Object>();
  ModelSpec o;
  o.arch(StringField(spec, "arch", ""));
  o.num_classes(IntegerField(spec, "numClasses", 10, 1, 1 << 24));
  if (!spec.Get("depth").IsUndefined()) o.depth(IntegerField(spec, "depth", 0, 0, 1000));
  o.stem(StringField(spec, "stem", "cifar")).placement(StringField(spec, "placement", "stage"));
  o.batch_norm(BooleanField(spec, "batchNorm", true));
  Napi::Value stages = spec.Get("stages");
  if (!stages.IsUndefined()) o.stages(args::Shape(stages, "stages"));
  if (o.arch() == "attention") o.channels(IntegerField(spec, "channels", 0, 1, 1 << 20));
  o.attention(ReadAttention(spec, "cbam"));
  return o;
}

Napi::Value CreateModel(const Napi::CallbackInfo& info) {
  auto model = MakeModel(ReadSpec(info[0]));
  auto& ctor = GetAddonData(info.Env()).model_constructor;
  return ctor.New({Napi::External<std::shared_ptr<ModelImpl>>::New(info.Env(), &model)});
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

Napi::Value ReadStateDictJs(const Napi::CallbackInfo& info) {
  std::string path = args::String(info[0], "readStateDict(path)");
  return PromiseWorker<NamedTensors>::Start(
      info.Env(), Napi::Object::New(info.Env()), Claim(), [path] { return ReadPth(path); },
      [](Napi::Env env, NamedTensors& tensors) { return Napi::Value(tensor::NamedTensorsToJs(env, tensors)); },
      runtime::RunHere);
}

// encodePth({ name: Tensor }) -> Buffer with the bytes of a .pth file (written to disk by the
// TypeScript layer, atomically).
Napi::Value EncodePthJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject() || info[0].IsArray()) args::ThrowType("encodePth() tensors", "an object of name -> Tensor", info[0]);
  std::vector<char> bytes = EncodePth(tensor::NamedTensorsFromJs(info[0], "encodePth()"));
  return Napi::Buffer<char>::Copy(info.Env(), bytes.data(), bytes.size());
}

// winogradConv2d(x, weight, bias, relu, precision, residual?, tile?): the plans' Winograd kernel
// (winograd.h) on one convolution, for its tests: float32 x (N x IC x H x W), weight (OC x IC x
// 3 x 3), bias (OC) and residual (N x OC x H x W, optional: undefined or null); with precision
// 'bf16' x, weight and residual rounded to bfloat16 as a bf16 plan rounds them (bias stays
// float32); tile: 2 (F(2x2, 3x3), the default) or 4 (F(4x4, 3x3), 'fp32' only). relu?(conv(x) +
// bias (+ residual)), stride 1, padding 1, as float32. Computed on the compute thread.
Napi::Value WinogradConv2dJs(const Napi::CallbackInfo& info) {
  const at::Tensor& x = tensor::TensorWrap::FromValue(info[0], "winogradConv2d(x)").Get();
  const at::Tensor& weight = tensor::TensorWrap::FromValue(info[1], "winogradConv2d(weight)").Get();
  const at::Tensor& bias = tensor::TensorWrap::FromValue(info[2], "winogradConv2d(bias)").Get();
  const bool relu = args::Boolean(info[3], "winogradConv2d(relu)");
  const Precision precision = ParsePrecision(args::String(info[4], "winogradConv2d(precision)"), "winogradConv2d(precision)");
  if (precision != Precision::kFp32 && precision != Precision::kBf16) throw RangeError("winogradConv2d(precision): 'fp32' or 'bf16'");
  const bool accumulate = !info[5].IsUndefined() && !info[5].IsNull();
  const int tile = info[6].IsUndefined() ? 2 : static_cast<int>(args::Integer(info[6], "winogradConv2d(tile)", 2, 4));
  if (tile != 2 && tile != 4) throw RangeError("winogradConv2d(tile): 2 or 4");
  if (tile == 4 && precision != Precision::kFp32) throw RangeError("winogradConv2d(tile): 4 (F(4x4, 3x3)) runs in 'fp32' only");
  const auto dtype = precision == Precision::kBf16 ? at::kBFloat16 : at::kFloat;
  if (!WinogradSupported(dtype)) {
    throw RangeError(dtype == at::kBFloat16 ? "winogradConv2d: this CPU has no AVX-512 BF16, which the bf16 kernel needs"
                                            : "winogradConv2d: this CPU has no AVX-512 (BW, VL), which the kernel needs");
  }
  for (const at::Tensor* t : {&x, &weight, &bias}) {
    if (t->scalar_type() != at::kFloat || !t->device().is_cpu()) throw TypeError("winogradConv2d: float32 CPU tensors");
  }
  if (x.dim() != 4 || weight.dim() != 4 || weight.size(1) != x.size(1) || weight.size(2) != 3 || weight.size(3) != 3 || bias.dim() != 1 ||
      bias.size(0) != weight.size(0) || !WinogradFits(weight.size(1), weight.size(0))) {
    throw RangeError("winogradConv2d: x N x IC x H x W, weight OC x IC x 3 x 3, bias OC; IC in multiples of 16, OC in multiples of 64");
  }
  const auto channels_last = at::MemoryFormat::ChannelsLast;
  const std::vector<int64_t> out_shape = {x.size(0), weight.size(0), x.size(2), x.size(3)};
  at::Tensor residual;
  if (accumulate) {
    residual = tensor::TensorWrap::FromValue(info[5], "winogradConv2d(residual)").Get();
    if (residual.scalar_type() != at::kFloat || !residual.device().is_cpu() || residual.sizes().vec() != out_shape) {
      throw RangeError("winogradConv2d: residual float32 on the CPU, N x OC x H x W");
    }
  }
  return tensor::TensorWrap::Wrap(info.Env(), OnComputeThread([&] {
    auto out = accumulate ? residual.to(dtype).contiguous(channels_last) : at::empty(out_shape, x.options().dtype(dtype).memory_format(channels_last));
    RunWinograd(x.to(dtype).contiguous(channels_last), WinogradWeights(weight.to(dtype), tile), bias.contiguous(), relu, accumulate, out);
    return out.to(at::kFloat).contiguous();
  }));
}

// winogradTrainingConv2d(x, weight, gradOutput, tile): training's Winograd convolution
// (winograd_training.h) on one convolution, for its tests: float32 x (N x IC x H x W), weight (OC x
// IC x 3 x 3), gradOutput (N x OC x H x W); 'bf16' runs it on their bfloat16 roundings. -> [output,
// input gradient, weight gradient] as float32, from autograd. Computed on the compute thread.
Napi::Value WinogradTrainingConv2dJs(const Napi::CallbackInfo& info) {
  const at::Tensor& x = tensor::TensorWrap::FromValue(info[0], "winogradTrainingConv2d(x)").Get();
  const at::Tensor& weight = tensor::TensorWrap::FromValue(info[1], "winogradTrainingConv2d(weight)").Get();
  const at::Tensor& grad = tensor::TensorWrap::FromValue(info[2], "winogradTrainingConv2d(gradOutput)").Get();
  const int tile = static_cast<int>(args::Integer(info[3], "winogradTrainingConv2d(tile)", 2, 4));
  const Precision precision = ParsePrecision(args::String(info[4], "winogradTrainingConv2d(precision)"), "winogradTrainingConv2d(precision)");
  const auto dtype = precision == Precision::kBf16 ? at::kBFloat16 : at::kFloat;
  if (!WinogradSupported(dtype) || (tile != 2 && tile != 4) || (tile == 4 && dtype != at::kFloat) || x.dim() != 4 || weight.dim() != 4 ||
      !WinogradFits(weight.size(1), weight.size(0))) {
    throw RangeError("winogradTrainingConv2d: a shape, tile or precision the kernel does not run here");
  }
  const auto results = OnComputeThread([&] {
    torch::AutoGradMode grad_mode(true);
    auto xs = x.to(dtype).detach().requires_grad_(true);
    auto ws = weight.to(dtype).detach().requires_grad_(true);
    auto y = WinogradConv3x3(xs, ws, tile);
    y.backward(grad.to(dtype));
    return std::vector<at::Tensor>{y.detach().to(at::kFloat).contiguous(), xs.grad().to(at::kFloat).contiguous(), ws.grad().to(at::kFloat).contiguous()};
  });
  auto out = Napi::Array::New(info.Env(), 3);
  for (uint32_t i = 0; i < 3; ++i) out.Set(i, tensor::TensorWrap::Wrap(info.Env(), results[i]));
  return out;
}

// winogradWeightGradient(x, gradOutput, tile): the weight's gradient by the kernel
// (WinogradWeightGradient) with the form given, for its tests: float32 x (N x IC x H x W) and
// gradOutput (N x OC x H x W) -> OC x IC x 3 x 3 float32; the kernel's own check refuses anything
// else. Computed on the compute thread.
Napi::Value WinogradWeightGradientJs(const Napi::CallbackInfo& info) {
  const at::Tensor& x = tensor::TensorWrap::FromValue(info[0], "winogradWeightGradient(x)").Get();
  const at::Tensor& grad = tensor::TensorWrap::FromValue(info[1], "winogradWeightGradient(gradOutput)").Get();
  const int tile = static_cast<int>(args::Integer(info[2], "winogradWeightGradient(tile)", 2, 4));
  if (x.dim() != 4 || grad.dim() != 4) throw RangeError("winogradWeightGradient: x and gradOutput must be 4-D (N x C x H x W)");
  const auto channels_last = at::MemoryFormat::ChannelsLast;
  return tensor::TensorWrap::Wrap(info.Env(), OnComputeThread([&] { return WinogradWeightGradient(x.contiguous(channels_last), grad.contiguous(channels_last), tile); }));
}

}  // namespace

void ModelWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(
      env, "Model",
      {
          ModelWrap::GuardedMethod<&ModelWrap::Forward>("forward"),
          ModelWrap::GuardedMethod<&ModelWrap::Predict>("predict"),
          ModelWrap::GuardedMethod<&ModelWrap::PredictParts>("predictParts"),
          ModelWrap::GuardedMethod<&ModelWrap::PrepareInference>("prepareInference"),
          ModelWrap::GuardedMethod<&ModelWrap::InferencePlan>("inferencePlan"),
          ModelWrap::GuardedMethod<&ModelWrap::SetInferencePlans>("setInferencePlans"),
          ModelWrap::GuardedMethod<&ModelWrap::ReservePlans>("reservePlans"),
          ModelWrap::GuardedMethod<&ModelWrap::AttentionMaps>("attentionMaps"),
          ModelWrap::GuardedMethod<&ModelWrap::ModelAttentionMaps>("modelAttentionMaps"),
          ModelWrap::GuardedMethod<&ModelWrap::Train>("train"),
          ModelWrap::GuardedGetter<&ModelWrap::Training>("training"),
          ModelWrap::GuardedGetter<&ModelWrap::Describe>("description"),
          ModelWrap::GuardedGetter<&ModelWrap::Device>("device"),
          ModelWrap::GuardedGetter<&ModelWrap::MemoryFormat>("memoryFormat"),
          ModelWrap::GuardedMethod<&ModelWrap::To>("to"),
          ModelWrap::GuardedMethod<&ModelWrap::NamedParameters>("namedParameters"),
          ModelWrap::GuardedMethod<&ModelWrap::NamedBuffers>("namedBuffers"),
          ModelWrap::GuardedMethod<&ModelWrap::ParameterCount>("parameterCount"),
          ModelWrap::GuardedMethod<&ModelWrap::Summary>("summary"),
          ModelWrap::GuardedMethod<&ModelWrap::StateDict>("stateDict"),
          ModelWrap::GuardedMethod<&ModelWrap::LoadStateDict>("loadStateDict"),
          ModelWrap::GuardedMethod<&ModelWrap::NamScalingFactors>("namScalingFactors"),
          ModelWrap::GuardedMethod<&ModelWrap::NamSparsityPenalty>("namSparsityPenalty"),
          ModelWrap::GuardedMethod<&ModelWrap::SetRequiresGrad>("setRequiresGrad"),
          ModelWrap::GuardedMethod<&ModelWrap::ApplyBatchNormPolicy>("applyBatchNormPolicy"),
          ModelWrap::GuardedMethod<&ModelWrap::GroupTable>("groupTable"),
          ModelWrap::GuardedMethod<&ModelWrap::TrainStep>("trainStep"),
      });
  GetAddonData(env).model_constructor = Napi::Persistent(ctor);
  exports.Set("Model", ctor);
  exports.Set("createModel", Napi::Function::New(env, GuardedFn<&CreateModel>, "createModel"));
  exports.Set("readStateDict", Napi::Function::New(env, GuardedFn<&ReadStateDictJs>, "readStateDict"));
  exports.Set("encodePth", Napi::Function::New(env, GuardedFn<&EncodePthJs>, "encodePth"));
  exports.Set("winogradConv2d", Napi::Function::New(env, GuardedFn<&WinogradConv2dJs>, "winogradConv2d"));
  exports.Set("winogradTrainingConv2d", Napi::Function::New(env, GuardedFn<&WinogradTrainingConv2dJs>, "winogradTrainingConv2d"));
  exports.Set("winogradWeightGradient", Napi::Function::New(env, GuardedFn<&WinogradWeightGradientJs>, "winogradWeightGradient"));
  auto precisions = Napi::Array::New(env, kPrecisionNames.size());
  for (size_t i = 0; i < kPrecisionNames.size(); ++i) precisions.Set(static_cast<uint32_t>(i), kPrecisionNames[i]);
  exports.Set("precisions", precisions);
}

Precision ReadPrecision(const Napi::Value& value, const std::string& where) {
  return value.IsUndefined() ? Precision::kFp32 : ParsePrecision(args::String(value, where), where);
}

training::StepOptions ReadStepOptions(const Napi::Object& o, const std::string& where) {
  training::StepOptions options;
  options.label_smoothing(args::NumberField(o, "labelSmoothing", 0))
      .nam_sparsity(args::NumberField(o, "namSparsity", 0))
      .grad_clip(args::NumberField(o, "gradClip", 0))
      .precision(ReadPrecision(o.Get("precision"), where + " precision"))
      .sync_batch_norm(args::BooleanField(o, "syncBatchNorm", false))
      .winograd(args::BooleanField(o, "winograd", false));
  return options;
}

ModelWrap& ModelWrap::FromValue(const Napi::Value& value, const std::string& what) {
  if (!HasTypeTag(value, ModelWrap::kTypeTag)) args::ThrowType(what, "a model", value);
  return *ObjectWrap<ModelWrap>::Unwrap(value.As<Napi::Object>());
}

ModelWrap::ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(info.Env(), "Model cannot be constructed with new here: use the model builders (resnet(), vgg(), new ResNetCBAM(), ...)");
  }
  model_ = *info[0].As<Napi::External<std::shared_ptr<ModelImpl>>>().Data();
  SetTypeTag(info.This().As<Napi::Object>(), ModelWrap::kTypeTag);
}

ModelImpl& ModelWrap::Model() {
  slot_->CheckFree("the model");
  return *model_;
}

ModelImpl& ModelWrap::ModelForInference() {
  slot_->CheckShareable("the model");
  return *model_;
}

ModelImpl& ModelWrap::ModelForReading() {
  slot_->CheckFree("the model", /*pausable=*/true);
  return *model_;
}

Claim ModelWrap::TakeClaim(const char* job, Claim::Kind kind) { return Claim(slot_, "the model", job, kind); }

// Synchronous, but computed on the compute thread like every other model job (the main thread
// waits): one OpenMP team and one malloc arena for all of LibTorch's work, as in Python. Runs
// beside inference jobs (queued behind them there), not beside a training job.
Napi::Value ModelWrap::Forward(const Napi::CallbackInfo& info) {
  auto& model = ModelForInference();
  auto x = PrepareInput(tensor::TensorWrap::FromValue(info[0], "forward(x)").Get(), model);
  return tensor::TensorWrap::Wrap(info.Env(), OnComputeThread([&] {
                                    torch::NoGradGuard no_grad;
                                    return model.Compute(x, Precision::kFp32);
                                  }));
}

Napi::Value ModelWrap::Predict(const Napi::CallbackInfo& info) {
  auto& model = ModelForInference();
  torch::Tensor x = PrepareInput(tensor::TensorWrap::FromValue(info[0], "predict(x)").Get(), model);
  int64_t batch = info[1].IsUndefined() ? 256 : args::Integer(info[1], "predict() batchSize", 1, 1 << 20);
  const auto precision = ReadPrecision(info[2], "predict() precision");
  model.CheckInput(x);
  auto shared = model_;
  return PromiseWorker<torch::Tensor>::Start(
      info.Env(), info.This().As<Napi::Object>(), TakeClaim("predict()", Claim::kShared),
      [shared, x, batch, precision] { return models::Predict(*shared, x, batch, precision); },
      [](Napi::Env env, torch::Tensor& out) { return Napi::Value(tensor::TensorWrap::Wrap(env, out)); },
      runtime::RunOnComputeThread);
}

// predictParts([x1, x2, ...], precision) -> Promise<[y1, y2, ...]>: the inputs (each B_i x C x H x W,
// or one image C x H x W whose output then has no batch dimension) in one forward pass, the
// outputs split back (the dynamic batcher of lib/serving).
Napi::Value ModelWrap::PredictParts(const Napi::CallbackInfo& info) {
  auto& model = ModelForInference();
  if (!info[0].IsArray()) args::ThrowType("predictParts() inputs", "an Array of tensors", info[0]);
  auto list = info[0].As<Napi::Array>();
  std::vector<torch::Tensor> parts;
  std::vector<bool> single;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const std::string what = "predictParts() inputs[" + std::to_string(i) + "]";
    auto x = PrepareInput(tensor::TensorWrap::FromValue(list.Get(i), what).Get(), model);
    single.push_back(x.dim() == 3);
    if (x.dim() == 3) x = x.unsqueeze(0);
    model.CheckInput(x);
    parts.push_back(x);
  }
  const auto precision = ReadPrecision(info[1], "predictParts() precision");
  auto shared = model_;
  return PromiseWorker<std::vector<torch::Tensor>>::Start(
      info.Env(), info.This().As<Napi::Object>(), TakeClaim("predict()", Claim::kShared),
      [shared, parts, precision, single] {
        auto outs = models::PredictParts(*shared, parts, precision);
        for (size_t i = 0; i < outs.size(); ++i) outs[i] = single[i] ? outs[i][0].clone() : outs[i].clone();
        return outs;
      },
      [](Napi::Env env, std::vector<torch::Tensor>& outs) {
        auto arr = Napi::Array::New(env, outs.size());
        for (size_t i = 0; i < outs.size(); ++i) arr.Set(static_cast<uint32_t>(i), tensor::TensorWrap::Wrap(env, outs[i]));
        return Napi::Value(arr);
      },
      runtime::RunOnComputeThread);
}

static Napi::Array PlansToJs(Napi::Env env, const std::vector<PlanDescription>& plans) {
  auto out = Napi::Array::New(env, plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    const auto& p = plans[i];
    auto o = Napi::Object::New(env);
    o.Set("shape", tensor::ShapeToJs(env, p.shape));
    o.Set("precision", PrecisionName(p.precision));
    o.Set("convolutions", static_cast<double>(p.convolutions));
    o.Set("foldedBatchNorms", static_cast<double>(p.folded_batch_norms));
    o.Set("fusedRelus", static_cast<double>(p.fused_relus));
    o.Set("fusedResidualAdds", static_cast<double>(p.fused_residual_adds));
    o.Set("winogradConvolutions", static_cast<double>(p.winograd_convolutions));
    o.Set("winogradF4Convolutions", static_cast<double>(p.winograd_f4_convolutions));
    o.Set("gemmConvolutions", static_cast<double>(p.gemm_convolutions));
    o.Set("weightBytes", static_cast<double>(p.weight_bytes));
    o.Set("uses", static_cast<double>(p.uses));
    out.Set(static_cast<uint32_t>(i), o);
  }
  return out;
}

// prepareInference(shapes, precision) -> Promise<plans>: plans made ahead of the first call.
Napi::Value ModelWrap::PrepareInference(const Napi::CallbackInfo& info) {
  ModelForInference();
  if (!info[0].IsArray()) args::ThrowType("prepareInference() shapes", "an Array of shapes [B, C, H, W]", info[0]);
  auto list = info[0].As<Napi::Array>();
  std::vector<std::vector<int64_t>> shapes;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const std::string what = "prepareInference() shapes[" + std::to_string(i) + "]";
    auto shape = args::Shape(list.Get(i), what);
    if (shape.size() != 4) throw RangeError(what + " must be [batch, channels, height, width], got " + std::to_string(shape.size()) + " dimensions");
    tensor::NumelOf(shape, what);
    shapes.push_back(std::move(shape));
  }
  const auto precision = ReadPrecision(info[1], "prepareInference() precision");
  auto shared = model_;
  return PromiseWorker<std::vector<PlanDescription>>::Start(
      info.Env(), info.This().As<Napi::Object>(), TakeClaim("prepareInference()", Claim::kShared),
      [shared, shapes, precision] { return models::PrepareInference(*shared, shapes, precision); },
      [](Napi::Env env, std::vector<PlanDescription>& plans) { return Napi::Value(PlansToJs(env, plans)); },
      runtime::RunOnComputeThread);
}

// inferencePlan() -> the plans the model holds, most recently used first (read on the compute
// thread, where plans are made).
Napi::Value ModelWrap::InferencePlan(const Napi::CallbackInfo& info) {
  ModelForInference();
  std::vector<PlanDescription> plans;
  auto shared = model_;
  runtime::RunOnComputeThread([&] { plans = shared->plans().Describe(); });
  return PlansToJs(info.Env(), plans);
}

// reservePlans(shapes): plans kept for that many more shapes (PlanCache::Reserve). Only a number,
// so set here, not on the compute thread, and allowed beside any job (a training job included).
Napi::Value ModelWrap::ReservePlans(const Napi::CallbackInfo& info) {
  model_->plans().Reserve(static_cast<size_t>(args::Integer(info[0], "reservePlans(shapes)", 0, 1 << 20)));
  return info.Env().Undefined();
}

// setInferencePlans(enabled, tuning): plans on (the default) or off (every call eager), and
// whether they measure the two forms of a large convolution (PlanCache::tuning). Plans made under
// other settings are dropped.
Napi::Value ModelWrap::SetInferencePlans(const Napi::CallbackInfo& info) {
  ModelForInference();
  const bool enabled = args::Boolean(info[0], "inferencePlans");
  const bool tuning = args::Boolean(info[1], "planTuning");
  auto shared = model_;
  runtime::RunOnComputeThread([&] {
    auto& plans = shared->plans();
    if (plans.enabled != enabled || plans.tuning != tuning) plans.Clear();
    plans.enabled = enabled;
    plans.tuning = tuning;
  });
  return info.Env().Undefined();
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

// modelAttentionMaps(x) -> Promise<{ [module name]: { [map name]: Tensor } }>: every attention
// module's maps for x in one eval-mode forward pass on the compute thread, in forward order.
Napi::Value ModelWrap::ModelAttentionMaps(const Napi::CallbackInfo& info) {
  auto& model = ModelForInference();
  torch::Tensor x = PrepareInput(tensor::TensorWrap::FromValue(info[0], "attentionMaps(x)").Get(), model);
  if (x.dim() == 3) x = x.unsqueeze(0);  // one image: its maps have a batch of one
  model.CheckInput(x);
  auto shared = model_;
  using Maps = std::vector<std::pair<std::string, modules::NamedMaps>>;
  return PromiseWorker<Maps>::Start(
      info.Env(), info.This().As<Napi::Object>(), TakeClaim("attentionMaps()", Claim::kShared),
      [shared, x] {
        auto maps = models::AttentionMapsOf(*shared, x);
        for (auto& [name, named] : maps) {
          for (auto& [key, map] : named) map = map.to(torch::kCPU, torch::kFloat).contiguous();
        }
        return maps;
      },
      [](Napi::Env env, Maps& maps) {
        auto out = Napi::Object::New(env);
        for (auto& [name, named] : maps) {
          auto entry = Napi::Object::New(env);
          for (auto& [key, map] : named) entry.Set(key, tensor::TensorWrap::Wrap(env, map));
          out.Set(name, entry);
        }
        return Napi::Value(out);
      },
      runtime::RunOnComputeThread);
}

Napi::Value ModelWrap::Train(const Napi::CallbackInfo& info) {
  Model().ApplyTrainingMode(info[0].IsUndefined() ? true : args::Boolean(info[0], "train(mode)"));
  return info.Env().Undefined();
}

Napi::Value ModelWrap::Training(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), ModelForReading().is_training());  // a job flips the mode while it runs
}

Napi::Value ModelWrap::Describe(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), model_->Describe()); }

Napi::Value ModelWrap::Device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), tensor::DeviceName(DeviceOf(*model_)));
}

// to(device | undefined, memoryFormat | undefined)
Napi::Value ModelWrap::To(const Napi::CallbackInfo& info) {
  auto& model = Model();
  if (!info[0].IsUndefined()) model.to(tensor::ParseDevice(args::String(info[0], "to() device")));
  if (!info[1].IsUndefined()) {
    const std::string format = args::String(info[1], "to() memoryFormat");
    if (format != "contiguous" && format != "channels-last") {
      throw RangeError("to() memoryFormat must be 'contiguous' or 'channels-last', got '" + format + "'");
    }
    model.SetChannelsLast(format == "channels-last");
  }
  return info.This();
}

Napi::Value ModelWrap::MemoryFormat(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Model().channels_last() ? "channels-last" : "contiguous");
}

Napi::Value ModelWrap::NamedParameters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto params = ModelForReading().named_parameters();
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
  auto buffers = ModelForReading().named_buffers();
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
  return Napi::Number::New(info.Env(), static_cast<double>(models::ParameterCount(ModelForReading(), trainable_only)));
}

Napi::Value ModelWrap::Summary(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto shape = args::Shape(info[0], "summary() input shape");
  tensor::NumelOf(shape, "summary() input shape");
  const auto rows = Summarize(Model(), shape);
  auto out = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    auto row = Napi::Object::New(env);
    row.Set("name", r.name);
    row.Set("type", r.type);
    row.Set("outputShape", tensor::ShapeToJs(env, r.output_shape));
    row.Set("params", static_cast<double>(r.params));
    row.Set("trainable", static_cast<double>(r.trainable));
    row.Set("macs", static_cast<double>(r.macs));
    out.Set(static_cast<uint32_t>(i), row);
  }
  return out;
}

Napi::Value ModelWrap::StateDict(const Napi::CallbackInfo& info) {
  auto out = Napi::Object::New(info.Env());
  for (auto& [name, tensor] : models::StateDict(ModelForReading())) out.Set(name, tensor::TensorWrap::Wrap(info.Env(), tensor));
  return out;
}

Napi::Value ModelWrap::LoadStateDict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Model();
  bool strict = info[1].IsUndefined() ? true : args::Boolean(info[1], "loadStateDict() strict");
  auto shared = model_;
  auto to_js = [](Napi::Env env, LoadReport& report) { return Napi::Value(ReportToJs(env, report)); };
  if (info[0].IsString()) {
    std::string path = info[0].As<Napi::String>().Utf8Value();
    return PromiseWorker<LoadReport>::Start(
        env, info.This().As<Napi::Object>(), TakeClaim("loadStateDict()"), [shared, path, strict] { return LoadStateDictFrom(*shared, path, strict); },
        to_js, runtime::RunHere);
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

Napi::Value ModelWrap::NamSparsityPenalty(const Napi::CallbackInfo& info) {
  double lambda = args::Number(info[0], "namSparsityPenalty(lambda)");
  if (lambda < 0) throw RangeError("namSparsityPenalty(lambda): lambda must be at least 0, got " + std::to_string(lambda));
  return Napi::Number::New(info.Env(), modules::NamSparsityPenalty(Model(), lambda));
}

// setRequiresGrad(names, flag): the freezing primitive; the TS layer resolves groups to names.
Napi::Value ModelWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  models::SetRequiresGrad(Model(), args::Strings(info[0], "setRequiresGrad(names)"), args::Boolean(info[1], "setRequiresGrad(flag)"));
  return info.Env().Undefined();
}

// applyBatchNormPolicy(freeze): BatchNorms of frozen parameters keep their statistics (true) or not.
Napi::Value ModelWrap::ApplyBatchNormPolicy(const Napi::CallbackInfo& info) {
  models::ApplyBatchNormPolicy(Model(), args::Boolean(info[0], "applyBatchNormPolicy(freeze)"));
  return info.Env().Undefined();
}

// groupTable() -> [[stateDictName, group]]: the model's own parameter-group table ('' for none).
Napi::Value ModelWrap::GroupTable(const Napi::CallbackInfo& info) {
  const auto table = models::GroupTable(ModelForReading());
  auto out = Napi::Array::New(info.Env(), table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    auto row = Napi::Array::New(info.Env(), 2);
    row.Set(0u, table[i].first);
    row.Set(1u, table[i].second);
    out.Set(static_cast<uint32_t>(i), row);
  }
  return out;
}

// trainStep(optimizer, x, labels, { labelSmoothing, namSparsity, gradClip, precision, distributed })
//   -> Promise<{ loss, correct, count, skipped }>; fp16 scales the loss with the optimizer's scaler.
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
  std::shared_ptr<distributed::Group> group;
  if (info[3].IsObject()) {
    auto o = info[3].As<Napi::Object>();
    options = ReadStepOptions(o, "trainStep()");
    if (!o.Get("distributed").IsUndefined()) group = distributed::ProcessGroupWrap::FromValue(o.Get("distributed"), "trainStep() distributed");
  }
  auto shared = model_;
  auto scaler = opt.scaler();
  return PromiseWorker<training::StepResult>::Start(
      info.Env(), info.This().As<Napi::Object>(), TakeClaim("trainStep()"),
      [shared, optimizer, x, labels, options, scaler, group] {
        auto replica = group ? group->ReplicaOf(shared) : nullptr;
        return training::TrainStep(*shared, *optimizer, x, labels, options, scaler.get(), replica.get());
      },
      [](Napi::Env env, training::StepResult& r) {
        auto out = Napi::Object::New(env);
        out.Set("loss", r.loss);
        out.Set("correct", static_cast<double>(r.correct));
        out.Set("count", static_cast<double>(r.count));
        out.Set("skipped", r.skipped);
        return Napi::Value(out);
      },
      runtime::RunOnComputeThread);
}

}  // namespace torch_attn::models
