// torch-attn addon entry: creates the per-context state and registers each area, nothing else.
#include <napi.h>

#include "common/addon_data.h"
#include "data/data_wrap.h"
#include "distributed/group_wrap.h"
#include "models/model_wrap.h"
#include "runtime/cpu_cache.h"
#include "runtime/onednn.h"
#include "runtime/runtime.h"
#include "runtime/runtime_wrap.h"
#include "tensor/tensor_wrap.h"
#include "training/optimizer_wrap.h"
#include "training/scaler_wrap.h"
#include "training/tuner_wrap.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Before LibTorch runs anything: oneDNN reads its instruction-set cap once, at first use.
  torch_attn::runtime::ApplyOneDnnWorkarounds();
  torch_attn::runtime::InstallCpuCache();
  env.SetInstanceData(new torch_attn::AddonData());
  torch_attn::runtime::RunKernelsAlone();  // the JS thread: model work runs on the compute thread
  torch_attn::runtime::Register(env, exports);
  torch_attn::tensor::TensorWrap::Register(env, exports);
  torch_attn::models::ModelWrap::Register(env, exports);
  torch_attn::training::OptimizerWrap::Register(env, exports);
  torch_attn::data::DatasetWrap::Register(env, exports);
  torch_attn::data::LoaderWrap::Register(env, exports);
  torch_attn::data::StreamWrap::Register(env, exports);
  torch_attn::training::RegisterTuner(env, exports);
  torch_attn::training::RegisterScaler(env, exports);
  torch_attn::distributed::ProcessGroupWrap::Register(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(torch_attn, Init)
