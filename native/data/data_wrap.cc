#include "data/data_wrap.h"

#include <algorithm>
#include <thread>

#include "common/addon_data.h"
#include "common/args.h"
#include "common/async.h"
#include "common/js_errors.h"
#include "common/type_tag.h"
#include "runtime/compute.h"
#include "runtime/runtime.h"
#include "tensor/tensor_wrap.h"

namespace torch_attn::data {

namespace {


// A typed array's bytes, checked for the element type.
std::vector<int64_t> Labels(const Napi::Value& value, const std::string& what) {
  auto raw = args::TypedValues<int32_t>(value, napi_int32_array, what, "an Int32Array");
  for (int32_t v : raw) {
    if (v < 0) throw RangeError(what + " must be non-negative class indices, got " + std::to_string(v));
  }
  return std::vector<int64_t>(raw.begin(), raw.end());
}

Napi::Value CreateMemoryDataset(const Napi::CallbackInfo& info) {
  auto pixels = args::TypedValues<uint8_t>(info[0], napi_uint8_array, "pixels", "a Uint8Array");
  auto labels = Labels(info[1], "labels");
  auto shape = args::Shape(info[2], "shape");
  if (shape.size() != 3) throw RangeError("shape must be [channels, height, width]");
  TransformedDataset data;
  data.source = std::make_shared<MemoryDataset>(std::move(pixels), std::move(labels), shape[0], shape[1], shape[2]);
  data.transform = std::make_shared<Pipeline>(std::vector<TransformSpec>{});
  return DatasetWrap::New(info.Env(), std::move(data));
}

Napi::Value CreateFileDataset(const Napi::CallbackInfo& info) {
  auto paths = args::Strings(info[0], "paths");
  auto labels = Labels(info[1], "labels");
  TransformedDataset data;
  data.source = std::make_shared<FileDataset>(std::move(paths), std::move(labels));
  data.transform = std::make_shared<Pipeline>(std::vector<TransformSpec>{});
  return DatasetWrap::New(info.Env(), std::move(data));
}

Napi::Value DrawSeedJs(const Napi::CallbackInfo& info) { return Napi::BigInt::New(info.Env(), runtime::DrawSeed()); }

Napi::Value CreateLoader(const Napi::CallbackInfo& info) {
  return GetAddonData(info.Env()).loader_constructor.New({info[0], info[1]});
}

// An image's buffer as a tensor of `sizes`, without a copy: the tensor owns the buffer from here
// and frees it (ImageAllocator gave it LibTorch's alignment). Should from_blob fail to allocate its
// own bookkeeping, the buffer leaks rather than being freed twice.
template <typename Buffer>
torch::Tensor TakeAsTensor(Buffer&& buffer, const std::vector<int64_t>& sizes, torch::ScalarType dtype) {
  auto* owner = new std::decay_t<Buffer>(std::move(buffer));
  return torch::from_blob(owner->data(), sizes, [owner](void*) { delete owner; }, torch::TensorOptions(dtype));
}

Napi::Object SampleToJs(Napi::Env env, Sample& s) {
  auto out = Napi::Object::New(env);
  torch::Tensor t = s.is_float ? TakeAsTensor(std::move(s.tensor.values), {s.tensor.channels, s.tensor.height, s.tensor.width}, torch::kFloat32)
                               : TakeAsTensor(std::move(s.image.pixels), {s.image.height, s.image.width, s.image.channels}, torch::kUInt8);
  out.Set("image", tensor::TensorWrap::Wrap(env, t));
  out.Set("label", Napi::Number::New(env, static_cast<double>(s.label)));
  return out;
}

// applyTransform(transform, image, seed): one image through a transform list, on the calling
// thread. `image` is uint8 [H, W, C] (an 8-bit image) or float32 [C, H, W] (after toTensor).
Napi::Value ApplyTransform(const Napi::CallbackInfo& info) {
  auto specs = ReadTransformSpecs(info[0], "transform");
  const at::Tensor& t = tensor::TensorWrap::FromValue(info[1], "image").Get();
  const uint64_t seed = info[2].IsUndefined() ? runtime::DrawSeed() : args::Seed(info[2], "seed");
  if (t.dim() != 3 || !t.device().is_cpu() || (t.scalar_type() != torch::kUInt8 && t.scalar_type() != torch::kFloat32)) {
    throw RangeError("image must be a CPU uint8 tensor [height, width, channels] or float32 tensor [channels, height, width], "
                     "got " + std::string(c10::toString(t.scalar_type())) + " with " + std::to_string(t.dim()) + " dimensions");
  }
  auto c = t.contiguous();
  Sample s;
  if (c.scalar_type() == torch::kUInt8) {
    s.image = Image(c.size(0), c.size(1), c.size(2));
    std::copy(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel(), s.image.pixels.begin());
  } else {
    s.is_float = true;
    s.tensor.channels = c.size(0), s.tensor.height = c.size(1), s.tensor.width = c.size(2);
    s.tensor.values.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  if (s.image.height == 0 && !s.is_float) throw RangeError("image is empty");
  Pipeline(specs, s.is_float).Apply(s, seed);
  return SampleToJs(info.Env(), s).Get("image");
}

// A small image decodes and transforms on the JS thread (decodeImage below): at most this many
// bytes, at most this many pixels a side by its header, and a transform made only of resize and
// centerCrop to at most kInlineSide, toTensor and normalize. Its bytes bound the decoder's work
// (a JPEG's scans, a PNG's chunks), its sides the transform's: at worst a 1 x 64 image resized to
// 64 on its shorter side, 64 x 4096.
constexpr size_t kInlineBytes = 16 << 10;
constexpr int64_t kInlineSide = 64;

bool DecodesInline(const std::string& bytes, const std::vector<TransformSpec>& specs) {
  if (bytes.size() > kInlineBytes) return false;
  // The transform first: it costs nothing to check, where the header peek opens a decoder.
  for (const auto& spec : specs) {
    if (spec.op == "toTensor" || spec.op == "normalize") continue;
    if (spec.op != "resize" && spec.op != "centerCrop") return false;
    for (const auto& [key, values] : spec.numbers) {
      if (key != "size") return false;  // resize's maxSize: not worth reasoning about
      for (double v : values) {
        if (!(v >= 1 && v <= kInlineSide)) return false;
      }
    }
  }
  int64_t width = 0, height = 0;
  if (!DeclaredSize(bytes, &width, &height)) return false;
  return width >= 1 && height >= 1 && width <= kInlineSide && height <= kInlineSide;
}

// decodeImage(bytes, transform | undefined, name, maxPixels | undefined) -> Promise<Tensor>: a
// JPEG or PNG held in memory (an HTTP body), decoded off the main thread (a small one on it) with
// the image folders' decoder and limits (and at most maxPixels pixels, refused from the header),
// then through `transform` (a deterministic eval transform; seed 0). uint8 [H, W, 3] without a
// transform or before toTensor, float32 [C, H, W] after it.
Napi::Value DecodeImageJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    args::ThrowType("decodeImage(data)", "a Buffer or Uint8Array", info[0]);
  }
  auto view = info[0].As<Napi::Uint8Array>();
  const std::string name = info[2].IsUndefined() ? "image" : args::String(info[2], "decodeImage() name");
  const uint64_t limit = GetImageLimits().max_file_bytes;
  if (view.ByteLength() > limit) {
    throw DataError(name + ": " + std::to_string(view.ByteLength()) + " bytes is over the image size limit of " + std::to_string(limit) +
                    " bytes (imageLimits({ maxFileBytes }))");
  }
  const int64_t max_pixels = info[3].IsUndefined() ? 0 : args::Integer(info[3], "decodeImage() maxPixels", 1, int64_t{1} << 40);
  const auto specs = info[1].IsUndefined() ? std::vector<TransformSpec>{} : ReadTransformSpecs(info[1], "decodeImage() transform");
  auto pipeline = std::make_shared<const Pipeline>(specs);
  std::string bytes(reinterpret_cast<const char*>(view.Data()), view.ByteLength());
  // A small image (a CIFAR-sized upload) is decoded here, in microseconds: the hop to libuv's
  // pool and back woke two threads for it, and on a server whose cores compute batches every
  // wake-up takes a core from the compute threads mid-kernel (measured in docs/measurements.md).
  if (DecodesInline(bytes, specs)) {
    auto deferred = Napi::Promise::Deferred::New(info.Env());
    try {
      Sample s;
      s.image = DecodeImage(bytes, name, max_pixels);
      pipeline->Apply(s, 0);
      deferred.Resolve(SampleToJs(info.Env(), s).Get("image"));
    } catch (const Napi::Error& e) {
      deferred.Reject(e.Value());
    } catch (...) {
      deferred.Reject(CurrentExceptionToJs(info.Env()).Value());
    }
    return deferred.Promise();
  }
  return PromiseWorker<Sample>::Start(
      info.Env(), Napi::Object::New(info.Env()), Claim(),
      [bytes = std::move(bytes), pipeline, name, max_pixels] {
        Sample s;
        s.image = DecodeImage(bytes, name, max_pixels);
        pipeline->Apply(s, 0);
        return s;
      },
      [](Napi::Env env, Sample& s) { return SampleToJs(env, s).Get("image"); }, runtime::RunHere);
}

}  // namespace

namespace {

// Bounds on a transform list from a caller (no transform takes more than 4 numbers).
constexpr uint32_t kMaxTransformSteps = 1024, kMaxTransformNumbers = 64;

std::vector<TransformSpec> ReadSpecs(const Napi::Value& value, const std::string& what, int depth) {
  if (!value.IsArray()) args::ThrowType(what, "an Array of transforms", value);
  auto list = value.As<Napi::Array>();
  if (list.Length() > kMaxTransformSteps) {
    throw RangeError(what + " has " + std::to_string(list.Length()) + " transforms; at most " + std::to_string(kMaxTransformSteps) + " are allowed");
  }
  std::vector<TransformSpec> specs;
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const std::string where = what + "[" + std::to_string(i) + "]";
    Napi::Value item = list.Get(i);
    if (!item.IsObject()) args::ThrowType(where, "a transform object", item);
    auto o = item.As<Napi::Object>();
    TransformSpec spec;
    spec.op = args::String(o.Get("op"), where + ".op");
    auto keys = o.GetPropertyNames();
    for (uint32_t k = 0; k < keys.Length(); ++k) {
      const std::string key = keys.Get(k).ToString().Utf8Value();
      if (key == "op") continue;
      Napi::Value v = o.Get(key);
      const std::string field = where + "." + key;
      if (v.IsUndefined()) continue;
      if (key == "steps") {
        if (depth + 1 >= kMaxTransformNesting) {
          throw RangeError(field + ": transforms nest " + std::to_string(depth + 2) + " deep; at most " + std::to_string(kMaxTransformNesting) + " levels are allowed");
        }
        spec.steps = ReadSpecs(v, field, depth + 1);
      } else if (v.IsNumber()) {
        spec.numbers[key] = {args::Number(v, field)};
      } else if (v.IsBoolean()) {
        spec.numbers[key] = {v.As<Napi::Boolean>().Value() ? 1.0 : 0.0};
      } else if (v.IsString()) {
        spec.strings[key] = v.As<Napi::String>().Utf8Value();
      } else if (v.IsArray()) {
        auto a = v.As<Napi::Array>();
        if (a.Length() > kMaxTransformNumbers) {
          throw RangeError(field + " has " + std::to_string(a.Length()) + " values; at most " + std::to_string(kMaxTransformNumbers) + " are allowed");
        }
        std::vector<double> numbers;
        for (uint32_t j = 0; j < a.Length(); ++j) numbers.push_back(args::Number(a.Get(j), field + "[" + std::to_string(j) + "]"));
        spec.numbers[key] = std::move(numbers);
      } else {
        args::ThrowType(field, "a number, boolean, string or Array of numbers", v);
      }
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace

std::vector<TransformSpec> ReadTransformSpecs(const Napi::Value& value, const std::string& what) { return ReadSpecs(value, what, 0); }

LoaderOptions ReadLoaderOptions(const Napi::Value& value) {
  if (!value.IsObject()) args::ThrowType("DataLoader options", "an object", value);
  auto o = value.As<Napi::Object>();
  LoaderOptions opt;
  opt.batch_size = args::IntegerField(o, "batchSize", 1, 1, int64_t{1} << 30);
  opt.shuffle = args::BooleanField(o, "shuffle", false);
  opt.drop_last = args::BooleanField(o, "dropLast", false);
  opt.workers = args::IntegerField(o, "workers", 0, 0, 256);
  opt.prefetch = args::IntegerField(o, "prefetch", 0, 0, 4096);
  opt.pin_memory = args::BooleanField(o, "pinMemory", false);
  opt.shard_count = args::IntegerField(o, "shardCount", 1, 1, 1 << 20);
  opt.shard_rank = args::IntegerField(o, "shardRank", 0, 0, 1 << 20);
  Napi::Value seed = o.Get("seed");
  opt.seed = seed.IsUndefined() ? runtime::DrawSeed() : args::Seed(seed, "seed");
  return opt;
}

// imageLimits({ maxPixels?, maxFileBytes? }?) -> { maxPixels, maxFileBytes }: reads, and sets
// what is given.
Napi::Value ImageLimitsJs(const Napi::CallbackInfo& info) {
  ImageLimits limits = GetImageLimits();
  if (!info[0].IsUndefined()) {
    if (!info[0].IsObject()) args::ThrowType("imageLimits(limits)", "an object { maxPixels?, maxFileBytes? }", info[0]);
    auto o = info[0].As<Napi::Object>();
    limits.max_pixels = args::IntegerField(o, "maxPixels", limits.max_pixels, 1, int64_t{1} << 40);
    limits.max_file_bytes = static_cast<uint64_t>(args::IntegerField(o, "maxFileBytes", static_cast<int64_t>(limits.max_file_bytes), 1, int64_t{1} << 40));
    SetImageLimits(limits);
  }
  auto out = Napi::Object::New(info.Env());
  out.Set("maxPixels", static_cast<double>(limits.max_pixels));
  out.Set("maxFileBytes", static_cast<double>(limits.max_file_bytes));
  return out;
}

// ---- Dataset ------------------------------------------------------------------------------

void DatasetWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "Dataset",
                                    {
                                        DatasetWrap::GuardedGetter<&DatasetWrap::Length>("length"),
                                        DatasetWrap::GuardedMethod<&DatasetWrap::Describe>("describe"),
                                        DatasetWrap::GuardedMethod<&DatasetWrap::WithTransform>("withTransform"),
                                        DatasetWrap::GuardedMethod<&DatasetWrap::Get>("get"),
                                        DatasetWrap::GuardedMethod<&DatasetWrap::Verify>("verify"),
                                    });
  GetAddonData(env).dataset_constructor = Napi::Persistent(ctor);
  exports.Set("Dataset", ctor);
  exports.Set("createMemoryDataset", Napi::Function::New(env, GuardedFn<&CreateMemoryDataset>, "createMemoryDataset"));
  exports.Set("createFileDataset", Napi::Function::New(env, GuardedFn<&CreateFileDataset>, "createFileDataset"));
  exports.Set("applyTransform", Napi::Function::New(env, GuardedFn<&ApplyTransform>, "applyTransform"));
  exports.Set("decodeImage", Napi::Function::New(env, GuardedFn<&DecodeImageJs>, "decodeImage"));
  exports.Set("drawSeed", Napi::Function::New(env, GuardedFn<&DrawSeedJs>, "drawSeed"));
  exports.Set("imageLimits", Napi::Function::New(env, GuardedFn<&ImageLimitsJs>, "imageLimits"));
}

DatasetWrap& DatasetWrap::FromValue(const Napi::Value& value, const std::string& what) {
  if (!HasTypeTag(value, DatasetWrap::kTypeTag)) args::ThrowType(what, "a Dataset", value);
  return *ObjectWrap<DatasetWrap>::Unwrap(value.As<Napi::Object>());
}

Napi::Object DatasetWrap::New(Napi::Env env, TransformedDataset data) {
  auto external = Napi::External<TransformedDataset>::New(env, new TransformedDataset(std::move(data)),
                                                          [](Napi::Env, TransformedDataset* d) { delete d; });
  return GetAddonData(env).dataset_constructor.New({external});
}

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  Guard(info.Env(), [&] {
    if (info.Length() != 1 || !info[0].IsExternal()) {
      throw TypeError("Dataset cannot be constructed directly: use datasets.cifar10(), datasets.imageFolder(), ...");
    }
    data_ = *info[0].As<Napi::External<TransformedDataset>>().Data();
    SetTypeTag(info.This().As<Napi::Object>(), DatasetWrap::kTypeTag);
    return info.Env().Undefined();
  });
}

Napi::Value DatasetWrap::Length(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(data_.size()));
}

Napi::Value DatasetWrap::Describe(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), data_.source->Describe());
}

Napi::Value DatasetWrap::WithTransform(const Napi::CallbackInfo& info) {
  TransformedDataset next{data_.source, std::make_shared<Pipeline>(ReadTransformSpecs(info[0], "transform"))};
  return New(info.Env(), std::move(next));
}

Napi::Value DatasetWrap::Get(const Napi::CallbackInfo& info) {
  const int64_t index = args::Integer(info[0], "get(index)", 0, std::max<int64_t>(data_.size() - 1, 0));
  if (data_.size() == 0) throw RangeError("get(index): the dataset is empty");
  const uint64_t seed = info[1].IsUndefined() ? runtime::DrawSeed() : args::Seed(info[1], "get(index, seed)");
  Sample s = data_.Get(index, seed);
  return SampleToJs(info.Env(), s);
}

Napi::Value DatasetWrap::Verify(const Napi::CallbackInfo& info) {
  struct Failure {
    int64_t index;
    std::string message;
  };
  auto source = data_.source;
  return PromiseWorker<std::vector<Failure>>::Start(
      info.Env(), info.This().As<Napi::Object>(), Claim(),
      [source] {
        const int64_t n = source->size();
        const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 8);
        std::atomic<int64_t> next{0};
        std::mutex mutex;
        std::vector<Failure> failures;
        std::vector<std::thread> pool;
        for (int64_t t = 0; t < threads; ++t) {
          pool.emplace_back([&] {
            for (int64_t i = next++; i < n; i = next++) {
              try {
                source->Load(i);
              } catch (const std::exception& e) {
                std::lock_guard<std::mutex> lock(mutex);
                failures.push_back({i, e.what()});
              }
            }
          });
        }
        for (auto& t : pool) t.join();
        std::sort(failures.begin(), failures.end(), [](const Failure& a, const Failure& b) { return a.index < b.index; });
        return failures;
      },
      [](Napi::Env env, std::vector<Failure>& failures) -> Napi::Value {
        auto out = Napi::Array::New(env, failures.size());
        for (size_t i = 0; i < failures.size(); ++i) {
          auto o = Napi::Object::New(env);
          o.Set("index", Napi::Number::New(env, static_cast<double>(failures[i].index)));
          o.Set("message", Napi::String::New(env, failures[i].message));
          out.Set(static_cast<uint32_t>(i), o);
        }
        return out;
      },
      runtime::RunHere);
}

// ---- DataLoader ---------------------------------------------------------------------------

void LoaderWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "DataLoader",
                                    {
                                        LoaderWrap::GuardedGetter<&LoaderWrap::BatchCount>("batchCount"),
                                        LoaderWrap::GuardedMethod<&LoaderWrap::Epoch>("epoch"),
                                    });
  GetAddonData(env).loader_constructor = Napi::Persistent(ctor);
  exports.Set("DataLoader", ctor);
  exports.Set("createLoader", Napi::Function::New(env, GuardedFn<&CreateLoader>, "createLoader"));
}

LoaderWrap& LoaderWrap::FromValue(const Napi::Value& value, const std::string& what) {
  if (!HasTypeTag(value, LoaderWrap::kTypeTag)) args::ThrowType(what, "a DataLoader", value);
  return *ObjectWrap<LoaderWrap>::Unwrap(value.As<Napi::Object>());
}

LoaderWrap::LoaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LoaderWrap>(info) {
  Guard(info.Env(), [&] {
    const auto& data = DatasetWrap::FromValue(info[0], "DataLoader(dataset)").data();
    loader_ = std::make_shared<Loader>(data, ReadLoaderOptions(info[1]));
    SetTypeTag(info.This().As<Napi::Object>(), LoaderWrap::kTypeTag);
    return info.Env().Undefined();
  });
}

Napi::Value LoaderWrap::BatchCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(loader_->batch_count()));
}

Napi::Value LoaderWrap::Epoch(const Napi::CallbackInfo& info) {
  const int64_t epoch = args::Integer(info[0], "epoch(index)", 0, int64_t{1} << 40);
  auto stream = loader_->Epoch(epoch);
  auto external = Napi::External<BatchStream>::New(info.Env(), stream.release());
  return GetAddonData(info.Env()).stream_constructor.New({external});
}

// ---- BatchStream --------------------------------------------------------------------------

void StreamWrap::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "BatchStream",
                                    {
                                        StreamWrap::GuardedMethod<&StreamWrap::Next>("next"),
                                        StreamWrap::GuardedMethod<&StreamWrap::Close>("close"),
                                    });
  GetAddonData(env).stream_constructor = Napi::Persistent(ctor);
}

StreamWrap::StreamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamWrap>(info) {
  Guard(info.Env(), [&] {
    if (info.Length() != 1 || !info[0].IsExternal()) throw TypeError("BatchStream comes from DataLoader.epoch()");
    stream_.reset(info[0].As<Napi::External<BatchStream>>().Data());
    SetTypeTag(info.This().As<Napi::Object>(), StreamWrap::kTypeTag);
    return info.Env().Undefined();
  });
}

Napi::Value StreamWrap::Next(const Napi::CallbackInfo& info) {
  auto stream = stream_;
  return PromiseWorker<std::optional<Batch>>::Start(
      info.Env(), info.This().As<Napi::Object>(), Claim(slot_, "the batch stream", "next()"), [stream] { return stream->Next(); },
      [](Napi::Env env, std::optional<Batch>& batch) -> Napi::Value {
        if (!batch) return env.Null();
        auto o = Napi::Object::New(env);
        o.Set("images", tensor::TensorWrap::Wrap(env, batch->images));
        o.Set("labels", tensor::TensorWrap::Wrap(env, batch->labels));
        o.Set("index", Napi::Number::New(env, static_cast<double>(batch->index)));
        return o;
      },
      runtime::RunHere);
}

// close() -> Promise: asks the workers to stop at once, and joins them off the JS thread (they
// may be decoding a slow image).
Napi::Value StreamWrap::Close(const Napi::CallbackInfo& info) {
  stream_->Stop();
  auto stream = stream_;
  return PromiseWorker<bool>::Start(
      info.Env(), info.This().As<Napi::Object>(), Claim(), [stream] { stream->Join(); return true; },
      [](Napi::Env env, bool&) { return env.Undefined(); }, runtime::RunHere);
}

}  // namespace torch_attn::data
