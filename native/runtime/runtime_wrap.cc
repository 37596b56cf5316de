#include "runtime/runtime_wrap.h"

#include "runtime/cpu_cache.h"

#include "common/args.h"
#include "common/js_errors.h"
#include "common/addon_data.h"
#include "models/inference_plan.h"
#include "models/precision.h"
#include "runtime/onednn.h"
#include "runtime/owned_threads.h"
#include "runtime/runtime.h"

namespace torch_attn::runtime {

namespace {

Napi::Value BuildInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  BuildInfo build = GetBuildInfo();
  auto out = Napi::Object::New(env);
  out.Set("libtorchVersion", build.libtorch_version);
  out.Set("libtorchDir", build.libtorch_dir);
  out.Set("cuda", build.cuda);
  if (build.cuda && !build.cuda_version.empty()) out.Set("cudaVersion", build.cuda_version);
  out.Set("napiVersion", NAPI_VERSION);
  const OneDnn& onednn = GetOneDnn();
  if (!onednn.version.empty()) out.Set("onednnVersion", onednn.version);
  out.Set("inferencePlans", models::PlansAvailable());
  if (models::PlansAvailable()) out.Set("planConvolutions", models::DirectConvAvailable() ? "onednn" : "prepacked");
  auto workarounds = Napi::Array::New(env);
  if (onednn.isa_capped) {
    workarounds.Set(workarounds.Length(),
                    "oneDNN " + onednn.version +
                        "'s AVX-512 and AVX2 kernels give wrong results and non-finite convolution gradients: "
                        "torch-attn set ONEDNN_MAX_CPU_ISA=SSE41 (right, about 0.6x the speed; set ONEDNN_MAX_CPU_ISA "
                        "yourself to choose otherwise)");
  }
  out.Set("workarounds", workarounds);
  // Precisions the hardware computes natively: bf16 needs avx512_bf16 / AMX on the CPU (it runs
  // emulated, slowly, elsewhere), compute capability 8.0 on a GPU; fp16 runs on GPUs only.
  auto native = Napi::Object::New(env);
  auto cpu = Napi::Array::New(env);
  cpu.Set(0u, "fp32");
  if (models::CpuHasNativeBf16()) cpu.Set(1u, "bf16");
  native.Set("cpu", cpu);
  const std::string capability = CudaCapability();
  if (!capability.empty()) {
    auto gpu = Napi::Array::New(env);
    gpu.Set(0u, "fp32");
    gpu.Set(1u, "fp16");
    if (std::stod(capability) >= 8.0) gpu.Set(2u, "bf16");
    native.Set("cuda", gpu);
    out.Set("cudaCapability", capability);
  }
  out.Set("nativePrecisions", native);
  return out;
}

Napi::Value CudaIsAvailableJs(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), CudaIsAvailable()); }

Napi::Value CudaDeviceCountJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(CudaDeviceCount()));
}

// cudnnBenchmark(on?) -> the setting, after changing it when `on` is given.
Napi::Value CudnnBenchmarkJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsUndefined()) SetCudnnBenchmark(args::Boolean(info[0], "cuda.cudnnBenchmark(on)"));
  return Napi::Boolean::New(info.Env(), CudnnBenchmark());
}

Napi::Value SetNumThreadsJs(const Napi::CallbackInfo& info) {
  SetNumThreads(static_cast<int>(args::Integer(info[0], "setNumThreads(n)", 1, 1024)));
  return info.Env().Undefined();
}

Napi::Value GetNumThreadsJs(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), GetNumThreads()); }

Napi::Value ManualSeedJs(const Napi::CallbackInfo& info) {
  const uint64_t seed = args::Seed(info[0], "manualSeed(seed)");
  ManualSeed(seed);
  return info.Env().Undefined();
}

// cpuCache(empty?) -> { cachedBytes, limitBytes, hits, misses }: the caching CPU allocator's state,
// after handing its free blocks back when `empty` is true.
Napi::Value CpuCacheJs(const Napi::CallbackInfo& info) {
  if (!info[0].IsUndefined() && args::Boolean(info[0], "cpuCache(empty)")) EmptyCpuCache();
  const auto stats = GetCpuCacheStats();
  auto out = Napi::Object::New(info.Env());
  out.Set("cachedBytes", static_cast<double>(stats.cached_bytes));
  out.Set("limitBytes", static_cast<double>(stats.limit_bytes));
  out.Set("hits", static_cast<double>(stats.hits));
  out.Set("misses", static_cast<double>(stats.misses));
  return out;
}

}  // namespace


// stopOwnedThreads(all): cancels and joins the native threads this environment started (every
// one in the process when `all`); called from process.on('exit').
Napi::Value StopOwnedThreadsJs(const Napi::CallbackInfo& info) {
  StopOwnedThreads(&GetAddonData(info.Env()), info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value());
  return info.Env().Undefined();
}

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuCache", Napi::Function::New(env, GuardedFn<&CpuCacheJs>, "cpuCache"));
  exports.Set("stopOwnedThreads", Napi::Function::New(env, GuardedFn<&StopOwnedThreadsJs>, "stopOwnedThreads"));
  exports.Set("buildInfo", Napi::Function::New(env, GuardedFn<&BuildInfoJs>, "buildInfo"));
  exports.Set("cudaIsAvailable", Napi::Function::New(env, GuardedFn<&CudaIsAvailableJs>, "cudaIsAvailable"));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, GuardedFn<&CudaDeviceCountJs>, "cudaDeviceCount"));
  exports.Set("cudnnBenchmark", Napi::Function::New(env, GuardedFn<&CudnnBenchmarkJs>, "cudnnBenchmark"));
  exports.Set("setNumThreads", Napi::Function::New(env, GuardedFn<&SetNumThreadsJs>, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New(env, GuardedFn<&GetNumThreadsJs>, "getNumThreads"));
  exports.Set("manualSeed", Napi::Function::New(env, GuardedFn<&ManualSeedJs>, "manualSeed"));
}

}  // namespace torch_attn::runtime
