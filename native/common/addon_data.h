// Per-instance addon state. The addon is context-aware: each main thread or worker that loads it
// gets its own AddonData, so constructors are never shared across JS contexts.
#pragma once

#include <napi.h>

namespace torch_attn {

struct AddonData {
  Napi::FunctionReference tensor_constructor;
  Napi::FunctionReference model_constructor;
  Napi::FunctionReference optimizer_constructor;
  Napi::FunctionReference dataset_constructor;
  Napi::FunctionReference loader_constructor;
  Napi::FunctionReference stream_constructor;
  Napi::FunctionReference control_constructor;
  Napi::FunctionReference process_group_constructor;
};

inline AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace torch_attn
